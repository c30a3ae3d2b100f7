/**
 * Heki at the function level: KVM_HC_LOCK_CR_UPDATE through kvm_emulate_hypercall() and
 * heki_lock_cr(), the write check, the exit caps, and the per-VM lifetime of the pins —
 * docs/heki.md §1.4, §3, §8 cases 1–6, 10, 11 (and the check of case 7 without a core).
 * Setup as §8 assumes: host CR0 0x80050033, host CR4 with SMEP|SMAP|UMIP|FSGSBASE, no CET.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { DEFAULT_HOST_CR0, DEFAULT_HOST_CR4 } from '../../host/kvm/kvm.js';
import { HekiState } from '../../host/kvm/heki.js';
import { __kvmEmulateHypercall, type HypercallRegs } from '../../host/kvm/hypercalls.js';
import { Kvm } from '../../host/kvm/kvm.js';

const SMEP = abi.X86_CR4_SMEP;
const SMAP = abi.X86_CR4_SMAP;
const WP = abi.X86_CR0_WP;
const EINVAL = 0xffff_ffff_ffff_ffean; // -22 as RAX
const EPERM = 0xffff_ffff_ffff_ffffn; // -1

function heki(configure = 0): HekiState {
  const h = new HekiState(DEFAULT_HOST_CR0, DEFAULT_HOST_CR4, abi.HEKI_CR4_PINNABLE_MASK_V2);
  h.configureExitReason = configure;
  return h;
}

/** VMCALL with RAX = 13, RBX = a0, RCX = a1, RDX = a2. */
function lockCr(h: HekiState, a0: bigint, a1: bigint, a2: bigint, cpl = 0) {
  const regs: HypercallRegs = { nr: BigInt(abi.KVM_HC_LOCK_CR_UPDATE), a0, a1, a2, a3: 0n };
  return __kvmEmulateHypercall(regs, cpl, true, { heki: h, pvHas: () => true });
}

test('the host model matches docs/heki.md §8: CR0 0x80050033; CR4 has SMEP|SMAP|UMIP|FSGSBASE and not CET', (t) => {
  t.is(DEFAULT_HOST_CR0, 0x80050033n);
  const want = abi.X86_CR4_SMEP | abi.X86_CR4_SMAP | abi.X86_CR4_UMIP | abi.X86_CR4_FSGSBASE;
  t.is(DEFAULT_HOST_CR4 & want, want);
  t.is(DEFAULT_HOST_CR4 & abi.X86_CR4_CET, 0n);
});

test('case 1: the version query returns 1, pins nothing, and never asks for a CONFIGURE exit', (t) => {
  const h = heki(3);
  const r = lockCr(h, 0n, 0n, 1n);
  t.is(r.rax, 1n);
  t.is(r.hekiConfigure, undefined);
  t.deepEqual([h.pinnedCr0, h.pinnedCr4], [0n, 0n]);
});

test('case 2: bad flags, or the version flag with a0 or a1 set, are -KVM_EINVAL', (t) => {
  const h = heki();
  t.is(lockCr(h, 0n, 0n, 2n).rax, EINVAL);
  t.is(lockCr(h, 4n, 0n, 1n).rax, EINVAL);
  t.is(lockCr(h, 0n, 0x10000n, 1n).rax, EINVAL);
  t.deepEqual([h.pinnedCr0, h.pinnedCr4], [0n, 0n]);
});

test('case 3: pin 0, an unknown CR, and a0 > U32_MAX (not truncated in 64-bit mode) are -KVM_EINVAL', (t) => {
  const h = heki();
  t.is(lockCr(h, 0n, 0n, 0n).rax, EINVAL);
  t.is(lockCr(h, 3n, 0x10000n, 0n).rax, EINVAL);
  t.is(lockCr(h, 8n, 0x10000n, 0n).rax, EINVAL);
  t.is(lockCr(h, 0x1_0000_0004n, SMEP, 0n).rax, EINVAL);
  t.deepEqual([h.pinnedCr0, h.pinnedCr4], [0n, 0n]);
});

test('case 4: a CR0 pin must contain WP and be a subset of the host CR0 (WP|PG passes)', (t) => {
  const h = heki();
  t.is(lockCr(h, 0n, abi.X86_CR0_PE, 0n).rax, EINVAL);
  t.is(h.pinnedCr0, 0n);
  t.is(lockCr(h, 0n, WP, 0n).rax, 0n);
  t.is(h.pinnedCr0, WP);
  t.is(lockCr(h, 0n, WP | abi.X86_CR0_PG, 0n).rax, 0n, 'compat quirk: PG is in the host CR0');
  t.is(h.pinnedCr0, WP | abi.X86_CR0_PG);
  t.is(lockCr(h, 0n, WP | abi.X86_CR0_TS, 0n).rax, EINVAL, 'TS is not in the host CR0');
});

test('case 5: a CR4 pin must be within the pinnable mask; bits the host lacks are dropped silently', (t) => {
  const h = heki(abi.KVM_HEKI_EXIT_REASON_CR4);
  const bad = lockCr(h, 4n, SMEP | abi.X86_CR4_PAE, 0n);
  t.is(bad.rax, EINVAL);
  t.is(bad.hekiConfigure, undefined);
  t.is(h.pinnedCr4, 0n, 'the whole call fails');
  const r = lockCr(h, 4n, SMEP | abi.X86_CR4_CET, 0n);
  t.deepEqual(r.hekiConfigure, { reason: abi.KVM_HEKI_EXIT_REASON_CR4, crPinned: SMEP });
  t.is(h.pinnedCr4, SMEP);
});

test('case 6: a CPL3 caller gets -KVM_EPERM, no fault, and pins nothing', (t) => {
  const h = heki();
  const r = lockCr(h, 4n, SMEP, 0n, 3);
  t.is(r.rax, EPERM);
  t.is(h.pinnedCr4, 0n);
});

test('case 9 (function level): the pin is in force before the CONFIGURE exit, cr_pinned is this call\'s pin, RAX waits for the completion', (t) => {
  const h = heki(3);
  h.pinnedCr0 = WP;
  const r = lockCr(h, 0n, WP | abi.X86_CR0_PG, 0n);
  t.deepEqual(r.hekiConfigure, { reason: abi.KVM_HEKI_EXIT_REASON_CR0, crPinned: WP | abi.X86_CR0_PG });
  t.true(h.deniesWrite(0, 0x80040033n), 'already enforced');
  const cr0Only = heki(abi.KVM_HEKI_EXIT_REASON_CR0);
  t.is(lockCr(cr0Only, 4n, SMEP, 0n).hekiConfigure, undefined, 'CR4 not asked for: plain return');
  t.is(lockCr(cr0Only, 4n, SMEP, 0n).rax, 0n);
});

test('case 7 (the check): a write that clears a pinned bit is denied; keeping or adding bits is allowed', (t) => {
  const h = heki();
  lockCr(h, 4n, SMEP, 0n);
  const cr4 = 0x3506e0n | SMEP;
  t.true(h.deniesWrite(4, cr4 & ~SMEP));
  t.true(h.deniesWrite(4, cr4 & ~(SMEP | abi.X86_CR4_VME)));
  t.false(h.deniesWrite(4, cr4 | abi.X86_CR4_VME));
  t.false(h.deniesWrite(4, cr4));
  t.false(h.deniesWrite(0, 0n), 'nothing pinned in CR0');
  t.false(h.deniesWrite(3, 0n), 'only CR0 and CR4 are checked');
});

test('case 11: pins OR together and no hypercall can clear them', (t) => {
  const h = heki();
  t.is(lockCr(h, 4n, SMEP, 0n).rax, 0n);
  t.is(lockCr(h, 4n, SMAP, 0n).rax, 0n);
  t.is(h.pinnedCr4, 0x300000n);
  t.is(lockCr(h, 4n, SMEP, 0n).rax, 0n, 'idempotent');
  t.is(h.pinnedCr4, 0x300000n);
});

test('v3: FRED is pinnable only in the v3 mask and is then dropped by a host CR4 without it', (t) => {
  const v2 = heki();
  t.is(lockCr(v2, 4n, abi.X86_CR4_FRED, 0n).rax, EINVAL);
  const v3 = new HekiState(DEFAULT_HOST_CR0, DEFAULT_HOST_CR4, abi.HEKI_CR4_PINNABLE_MASK_V3);
  t.is(lockCr(v3, 4n, abi.X86_CR4_FRED, 0n).rax, 0n);
  t.is(v3.pinnedCr4, 0n);
});

test('case 10: both Heki caps check to 3 under the VM\'s profile; masks are validated then assigned', (t) => {
  const kvm = new Kvm();
  const v2 = kvm.createVm();
  const { KVM_CAP_HEKI_CONFIGURE: configure, KVM_CAP_HEKI_DENIAL: denial } = abi.HEKI_PROFILES.v2;
  t.is(v2.checkExtension(configure), 3);
  t.is(v2.checkExtension(denial), 3);
  t.is(kvm.checkExtension(235), 3);
  t.throws(() => v2.enableCap(configure, [4]), { code: 'EINVAL' });
  t.is(v2.getHekiState().configureExitReason, 0, 'unchanged');
  v2.enableCap(configure, [3]);
  t.is(v2.getHekiState().configureExitReason, 3);
  v2.enableCap(configure, [0]);
  t.is(v2.getHekiState().configureExitReason, 0, 'assigned, not ORed');
  v2.enableCap(denial, [2]);
  t.is(v2.getHekiState().denialExitReason, 2);
  const v3 = kvm.createVm({ profile: 'v3' });
  t.is(v3.checkExtension(235), 0, 'v3 moved the caps to 236/237');
  t.is(v3.checkExtension(237), 3);
  v3.enableCap(236, [1]);
  t.deepEqual([v3.getHekiState().configureExitReason, v3.getHekiState().denialExitReason], [1, 0], '236 is CONFIGURE in v3');
  t.throws(() => v3.enableCap(235, [1]), { code: 'EINVAL' });
});

test('pins are per VM; only the user-space VM reset clears them (exit masks stay); snapshots round-trip', (t) => {
  const kvm = new Kvm();
  const vm = kvm.createVm();
  const other = kvm.createVm();
  vm.setHekiState({ pinnedCr0: WP, pinnedCr4: SMEP, configureExitReason: 1, denialExitReason: 2 });
  t.deepEqual(vm.hekiPins, { cr0: WP, cr4: SMEP });
  t.deepEqual(other.hekiPins, { cr0: 0n, cr4: 0n });
  t.true(Object.isFrozen(vm.hekiPins));
  const snap = vm.getHekiState();
  vm.resetHekiPins();
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: 0n });
  t.deepEqual([vm.getHekiState().configureExitReason, vm.getHekiState().denialExitReason], [1, 2]);
  other.setHekiState(snap);
  t.deepEqual(other.getHekiState(), snap);
});

test('a bad Heki snapshot is refused whole', (t) => {
  const vm = new Kvm().createVm();
  vm.setHekiState({ pinnedCr0: WP, pinnedCr4: 0n, configureExitReason: 0, denialExitReason: 0 });
  t.throws(() => vm.setHekiState({ pinnedCr0: 0n, pinnedCr4: SMEP, configureExitReason: 0, denialExitReason: 4 }), { code: 'EINVAL' });
  t.throws(() => vm.setHekiState({ pinnedCr0: 1 as unknown as bigint, pinnedCr4: 0n, configureExitReason: 0, denialExitReason: 0 }), { code: 'EINVAL', message: /pinnedCr0/ });
  t.throws(() => vm.setHekiState({ pinnedCr0: -1n, pinnedCr4: 0n, configureExitReason: 0, denialExitReason: 0 }), { code: 'EINVAL' });
  t.deepEqual(vm.hekiPins, { cr0: WP, cr4: 0n });
});
