import test from 'ava';
import * as abi from '../../protocol/abi.js';

// Expected numbers come from docs/heki.md §0/§3 and docs/msr-filter.md §1.1, not from abi.ts.
test('Heki ABI profiles carry the RFC v2 and v3 numbers', (t) => {
  t.deepEqual(
    [abi.HEKI_PROFILES.v2.KVM_EXIT_HEKI_CONFIGURE, abi.HEKI_PROFILES.v2.KVM_EXIT_HEKI_DENIAL,
     abi.HEKI_PROFILES.v2.KVM_CAP_HEKI_CONFIGURE, abi.HEKI_PROFILES.v2.KVM_CAP_HEKI_DENIAL],
    [39, 40, 235, 236],
  );
  t.deepEqual(
    [abi.HEKI_PROFILES.v3.KVM_EXIT_HEKI_CONFIGURE, abi.HEKI_PROFILES.v3.KVM_EXIT_HEKI_DENIAL,
     abi.HEKI_PROFILES.v3.KVM_CAP_HEKI_CONFIGURE, abi.HEKI_PROFILES.v3.KVM_CAP_HEKI_DENIAL],
    [40, 41, 236, 237],
  );
  t.is(abi.DEFAULT_HEKI_PROFILE, 'v2');
  t.is(abi.KVM_HC_LOCK_CR_UPDATE, 13);
});

test('the CR4 pinnable mask is SMEP|SMAP|UMIP|FSGSBASE|CET (0xb10800), plus FRED in v3', (t) => {
  t.is(abi.HEKI_CR4_PINNABLE_MASK_V2, 0xb10800n);
  t.is(abi.HEKI_CR4_PINNABLE_MASK_V3, 0x1_00b10800n);
});

test('MSR filter and exit constants match the uapi', (t) => {
  t.is(abi.KVM_EXIT_X86_RDMSR, 29);
  t.is(abi.KVM_EXIT_X86_WRMSR, 30);
  t.is(abi.KVM_CAP_X86_USER_SPACE_MSR, 188);
  t.is(abi.KVM_CAP_X86_MSR_FILTER, 189);
  t.is(abi.KVM_MSR_EXIT_REASON_VALID_MASK, 7);
  t.is(abi.KVM_MSR_FILTER_MAX_BITMAP_SIZE, 0x600);
  t.is(abi.KVM_MSR_FILTER_MAX_RANGES, 16);
  t.is(-abi.KVM_EINVAL, -22);
  t.is(abi.KVM_ENOSYS, 1000);
});
