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

// docs/pinbox-abi.md: pinbox's own numbers sit where mainline's dense allocation will not reach
// (include/uapi/linux/kvm.h in Linux 6.19: exits up to 41, capabilities up to 246, every ioctl
// of type KVMIO 0xAE), and apart from the Heki profiles' numbers.
test('pinbox\'s extension numbers are out of mainline\'s range and Heki\'s', (t) => {
  const exits = [abi.KVM_EXIT_PINBOX_CR_FILTER, abi.KVM_EXIT_PINBOX_REG_INTERCEPT];
  const caps = [abi.KVM_CAP_PINBOX_CR_FILTER, abi.KVM_CAP_PINBOX_REG_INTERCEPTS, abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, abi.KVM_CAP_PINBOX_MBEC];
  t.deepEqual(exits, [0x5042_0001, 0x5042_0002]);
  // docs/pinbox-abi.md, docs/memory-protection.md §3.1: one range, each capability its own number.
  t.deepEqual(caps, [0x5042_0001, 0x5042_0002, 0x5042_0003, 0x5042_0004]);
  const heki = Object.values(abi.HEKI_PROFILES).flatMap((p) => [p.KVM_EXIT_HEKI_CONFIGURE, p.KVM_EXIT_HEKI_DENIAL, p.KVM_CAP_HEKI_CONFIGURE, p.KVM_CAP_HEKI_DENIAL]);
  for (const n of [...exits, ...caps]) {
    t.true(n > 0xffff, `0x${n.toString(16)} is above every mainline exit and capability`);
    t.false(heki.includes(n));
  }
  // _IOW('P', 1, 64): direction write (1) << 30 | size 64 << 16 | 'P' << 8 | 1
  t.is(abi.PINBOX_SET_CR_FILTER, 0x4040_5001);
  t.is(abi.PINBOX_SET_REG_INTERCEPTS, 0x4040_5002);
  t.is(abi.PINBOX_GET_REG_INTERCEPTS, 0x8040_5003);
  for (const ioctl of [abi.PINBOX_SET_CR_FILTER, abi.PINBOX_SET_REG_INTERCEPTS, abi.PINBOX_GET_REG_INTERCEPTS]) {
    t.not((ioctl >>> 8) & 0xff, 0xae, 'not of type KVMIO');
  }
  t.is(abi.PINBOX_CR_ACCESS_MOV, 0);
  t.is(abi.PINBOX_CR_ACCESS_CLTS, 2);
  t.is(abi.PINBOX_CR_ACCESS_LMSW, 3);
});

// docs/memory-protection.md §3.1: the RWX attributes and the access-kind flags take bits 24-27,
// clear of mainline's PRIVATE (bit 3) and of bit 31 (the supported mask is returned as an int).
test('pinbox\'s memory attributes and memory-fault flags are bits 24-27, apart from PRIVATE', (t) => {
  t.deepEqual(
    [abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR, abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW, abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX, abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX],
    [0x100_0000n, 0x200_0000n, 0x400_0000n, 0x800_0000n],
  );
  t.deepEqual(
    [abi.KVM_MEMORY_EXIT_FLAG_PINBOX_READ, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID],
    [0x100_0000n, 0x200_0000n, 0x400_0000n, 0x800_0000n],
  );
  t.is(abi.KVM_MEMORY_ATTRIBUTES_PINBOX_MASK & abi.KVM_MEMORY_ATTRIBUTE_PRIVATE, 0n);
  t.is(abi.KVM_MEMORY_ATTRIBUTES_PINBOX_MASK, 0xf00_0000n);
});
