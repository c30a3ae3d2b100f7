/**
 * Heki CR pinning with real VMCALL, MOV to CR0/CR4, LMSW and CLTS on the core:
 * docs/heki.md §8 cases 1–13, under both ABI profiles (v2: exits 39/40, caps 235/236;
 * v3: 40/41, 236/237). Setup as §8 assumes: host CR0 0x80050033, host CR4 with
 * SMEP|SMAP|UMIP|FSGSBASE and not CET, a 64-bit CPL0 guest whose CR4 has those four bits.
 * Hypercall results are shown as the u64 the guest sees in RAX.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { DEFAULT_HOST_CR0 } from '../../host/kvm/kvm.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { layout as L } from '../../host/vmm/boot/index.js';
import { Guest, neg, type GuestOptions, type Outcome } from './guest.js';

const LOCK = BigInt(abi.KVM_HC_LOCK_CR_UPDATE);
const WP = abi.X86_CR0_WP;
const MP = abi.X86_CR0_MP;
const TS = abi.X86_CR0_TS;
const SMEP = abi.X86_CR4_SMEP;
const SMAP = abi.X86_CR4_SMAP;
const VME = abi.X86_CR4_VME;
const EINVAL = neg(22);
const EPERM = neg(1);
const GP = abi.GP_VECTOR;
const CR0_REASON = abi.KVM_HEKI_EXIT_REASON_CR0;
const CR4_REASON = abi.KVM_HEKI_EXIT_REASON_CR4;
const PROFILES = ['v2', 'v3'] as const;

/** KVM_HC_LOCK_CR_UPDATE(a0, a1, a2) from vCPU `n` at CPL0; returns RAX. */
function lockCr(g: Guest, a0: bigint, a1: bigint, a2 = 0n, n = 0): bigint {
  const op = g.start('vmcall', { rax: LOCK, rbx: a0, rcx: a1, rdx: a2 }, n);
  const out = g.finish(n);
  if (out.fault !== null) throw new Error(`the hypercall faulted: vector ${out.fault.vector}`);
  if (out.regs.rip !== BigInt(op.epilogue + 1)) throw new Error('the VMCALL was not retired');
  return out.regs.rax;
}

/** `mov crN, rax` with RAX = value on vCPU `n`, run to its end. */
function writeCr(g: Guest, cr: 0 | 4, value: bigint, n = 0): Outcome & { entry: number } {
  const op = g.start(cr === 0 ? 'writeCr0' : 'writeCr4', { rax: value }, n);
  return { ...g.finish(n), entry: op.entry };
}

const gpAt = (entry: number) => ({ vector: GP, errorCode: 0, rip: BigInt(entry) });

test('case 1: the version query returns 1, pins nothing and never exits, even with CONFIGURE on', (t) => {
  const g = new Guest();
  g.vm.enableCap(g.vm.profile.KVM_CAP_HEKI_CONFIGURE, [3]);
  const op = g.start('vmcall', { rax: LOCK, rbx: 0n, rcx: 0n, rdx: 1n });
  const out = g.finish();
  t.is(out.regs.rax, 1n);
  t.is(out.regs.rip, BigInt(op.entry + 3 + 1), 'RIP went past the 3-byte VMCALL and the HLT');
  t.deepEqual(g.vm.hekiPins, { cr0: 0n, cr4: 0n });
});

test('case 2: other flags, or the version flag with a0 or a1 set, are -KVM_EINVAL', (t) => {
  const g = new Guest();
  t.is(lockCr(g, 0n, 0n, 2n), EINVAL);
  t.is(lockCr(g, 4n, 0n, 1n), EINVAL);
  t.is(lockCr(g, 0n, 0x10000n, 1n), EINVAL);
  t.deepEqual(g.vm.hekiPins, { cr0: 0n, cr4: 0n });
});

test('case 3: pin 0, CR3, CR8, and a0 above U32_MAX (not truncated in 64-bit mode) are -KVM_EINVAL', (t) => {
  const g = new Guest();
  t.is(lockCr(g, 0n, 0n), EINVAL);
  t.is(lockCr(g, 3n, WP), EINVAL);
  t.is(lockCr(g, 8n, WP), EINVAL);
  t.is(lockCr(g, 0x1_0000_0004n, SMEP), EINVAL);
  t.deepEqual(g.vm.hekiPins, { cr0: 0n, cr4: 0n });
});

test('case 4: a CR0 pin must hold WP and lie within the host CR0 (so WP|PG passes)', (t) => {
  const g = new Guest();
  t.is(lockCr(g, 0n, abi.X86_CR0_PE), EINVAL);
  t.is(g.vm.hekiPins.cr0, 0n);
  t.is(lockCr(g, 0n, WP), 0n);
  t.is(g.vm.hekiPins.cr0, WP);
  t.is(lockCr(g, 0n, WP | abi.X86_CR0_PG), 0n);
  t.is(g.vm.hekiPins.cr0, WP | abi.X86_CR0_PG);
});

test('case 5: a CR4 pin outside the pinnable mask fails whole; CET, absent on the host, is dropped silently', (t) => {
  const g = new Guest();
  g.vm.enableCap(g.vm.profile.KVM_CAP_HEKI_CONFIGURE, [CR4_REASON]);
  t.is(lockCr(g, 4n, SMEP | abi.X86_CR4_PAE), EINVAL, 'no CONFIGURE exit for a failed call');
  t.is(g.vm.hekiPins.cr4, 0n);
  g.start('vmcall', { rax: LOCK, rbx: 4n, rcx: SMEP | abi.X86_CR4_CET, rdx: 0n });
  const exit = g.runExpecting('KVM_EXIT_HEKI_CONFIGURE');
  t.deepEqual({ ...exit.heki_configure }, { reason: CR4_REASON, cr_pinned: SMEP });
  t.is(g.finish().regs.rax, 0n);
  t.is(g.vm.hekiPins.cr4, SMEP);
});

test('case 6: a lock call at CPL3 returns -KVM_EPERM, without a fault, retires, and pins nothing', (t) => {
  const g = new Guest();
  const op = g.startUser('vmcall', { rax: LOCK, rbx: 4n, rcx: SMEP, rdx: 0n });
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, EPERM);
  // The done gate's frame (on IST1) holds the user RIP after its `int3`: past the VMCALL.
  t.is(g.vm.memory.read64(L.exceptionStackTop(0) - 40), BigInt(op.epilogue + 1));
  t.is(g.vm.memory.read64(L.exceptionStackTop(0) - 32), BigInt(L.SELECTORS.userCs));
  t.deepEqual(g.vm.hekiPins, { cr0: 0n, cr4: 0n });
});

test('case 7: clearing pinned SMEP with MOV CR4 is exactly one #GP(0), RIP on the MOV, CR4 unchanged, and logged', (t) => {
  const g = new Guest();
  const log: string[] = [];
  g.kvm.tracepoints.on('kvm_heki_blocked', (e) => log.push(e.message));
  const cr4 = g.cr(4);
  t.is(cr4 & SMEP, SMEP, 'the booted guest has SMEP');
  t.is(lockCr(g, 4n, SMEP), 0n);

  const denied = writeCr(g, 4, cr4 & ~SMEP);
  t.deepEqual(denied.fault, gpAt(denied.entry));
  t.is(denied.faults, 1, 'one #GP, never a #DF');
  t.is(g.cr(4), cr4);
  t.deepEqual(log, [`heki: Blocked CR4 update: 0x${(cr4 & ~SMEP).toString(16)}`]);

  // Writes that keep SMEP: set VME, clear it, rewrite SMEP.
  t.is(writeCr(g, 4, cr4 | VME).fault, null);
  t.is(g.cr(4), cr4 | VME);
  const both = writeCr(g, 4, cr4 & ~(SMEP | VME));
  t.deepEqual(both.fault, gpAt(both.entry), 'clearing SMEP|VME together is refused whole');
  t.is(g.cr(4), cr4 | VME, 'VME stays set');
  t.is(writeCr(g, 4, cr4).fault, null);
  t.is(writeCr(g, 4, cr4 | SMEP).fault, null);
  t.is(g.cr(4), cr4);
});

test('case 7, LMSW: with MP pinned (WP|MP), an LMSW that clears MP is one #GP(0); one that keeps it loads', (t) => {
  const g = new Guest();
  const cr0 = g.cr(0);
  t.is(cr0 & MP, MP);
  t.is(lockCr(g, 0n, WP | MP), 0n);
  const op = g.start('lmsw', { rax: (cr0 & 0xffffn) & ~MP });
  const denied = g.finish();
  t.deepEqual(denied.fault, gpAt(op.entry));
  t.is(denied.faults, 1);
  t.is(g.cr(0), cr0);
  g.start('lmsw', { rax: (cr0 & 0xffffn) | TS });
  t.is(g.finish().fault, null);
  t.is(g.cr(0), cr0 | TS);
});

test('case 7, CLTS: with TS pinned (host CR0 has TS), CLTS is one #GP(0) and TS stays set', (t) => {
  const g = new Guest({ hostCr0: DEFAULT_HOST_CR0 | TS });
  const cr0 = g.cr(0);
  t.is(writeCr(g, 0, cr0 | TS).fault, null);
  t.is(lockCr(g, 0n, WP | TS), 0n);
  const op = g.start('clts');
  const denied = g.finish();
  t.deepEqual(denied.fault, gpAt(op.entry));
  t.is(denied.faults, 1);
  t.is(g.cr(0), cr0 | TS);
});

test('the guest\'s CR value is never consulted: a bit pinned while clear makes every write that keeps it clear #GP', (t) => {
  const g = new Guest({ cpuFeatures: { smap: false } });
  const cr4 = g.cr(4);
  t.is(cr4 & SMAP, 0n);
  t.is(lockCr(g, 4n, SMAP), 0n);
  t.is(g.cr(4), cr4, 'the live register is untouched');
  const same = writeCr(g, 4, cr4);
  t.deepEqual(same.fault, gpAt(same.entry), 'rewriting the current value is refused');
  t.is(writeCr(g, 4, cr4 | SMAP).fault, null);
  t.is(g.cr(4), cr4 | SMAP);
});

for (const profile of PROFILES) {
  test(`case 8 (${profile}): KVM_EXIT_HEKI_DENIAL for CR4 carries the attempted value; the next run delivers #GP(0); CR0 without its bit just faults`, (t) => {
    const g = new Guest({ profile });
    const p = abi.HEKI_PROFILES[profile];
    g.vm.enableCap(p.KVM_CAP_HEKI_DENIAL, [CR4_REASON]);
    t.is(lockCr(g, 4n, SMEP), 0n);
    t.is(lockCr(g, 0n, WP), 0n);
    const cr4 = g.cr(4);
    const op = g.start('writeCr4', { rax: cr4 & ~SMEP });
    const exit = g.runExpecting('KVM_EXIT_HEKI_DENIAL');
    t.is(exit.exit_reason, p.KVM_EXIT_HEKI_DENIAL);
    t.deepEqual({ ...exit.heki_denial }, { reason: CR4_REASON, cr_value: cr4 & ~SMEP });
    t.is(g.regs().rip, BigInt(op.entry));
    t.is(g.faultRecord().count, 0, 'no #GP before the VMM resumes');
    const out = g.finish();
    t.deepEqual(out.fault, gpAt(op.entry));
    t.is(out.faults, 1);
    t.is(g.cr(4), cr4);

    const cr0 = writeCr(g, 0, g.cr(0) & ~WP);
    t.deepEqual(cr0.fault, gpAt(cr0.entry), 'CR0 is not in the DENIAL mask: a #GP and no exit');
  });

  test(`case 8 (${profile}): LMSW and CLTS denials exit too, with the whole CR0 value`, (t) => {
    const g = new Guest({ profile, hostCr0: DEFAULT_HOST_CR0 | TS });
    g.vm.enableCap(abi.HEKI_PROFILES[profile].KVM_CAP_HEKI_DENIAL, [CR0_REASON]);
    const cr0 = g.cr(0) | TS;
    t.is(writeCr(g, 0, cr0).fault, null);
    t.is(lockCr(g, 0n, WP | MP | TS), 0n);
    const lmsw = g.start('lmsw', { rax: (cr0 & 0xffffn) & ~MP });
    t.is(g.runExpecting('KVM_EXIT_HEKI_DENIAL').heki_denial.cr_value, cr0 & ~MP);
    t.deepEqual(g.finish().fault, gpAt(lmsw.entry));
    const clts = g.start('clts');
    t.deepEqual({ ...g.runExpecting('KVM_EXIT_HEKI_DENIAL').heki_denial }, { reason: CR0_REASON, cr_value: cr0 & ~TS });
    t.deepEqual(g.finish().fault, gpAt(clts.entry));
    t.is(g.cr(0), cr0);
  });

  test(`case 9 (${profile}): KVM_EXIT_HEKI_CONFIGURE after the pin is in force; the completion forces RAX = 0 and retires the VMCALL`, (t) => {
    const g = new Guest({ profile, vcpus: 2 });
    const p = abi.HEKI_PROFILES[profile];
    g.vm.enableCap(p.KVM_CAP_HEKI_CONFIGURE, [3]);
    const op = g.start('vmcall', { rax: LOCK, rbx: 0n, rcx: WP, rdx: 0n });
    const exit = g.runExpecting('KVM_EXIT_HEKI_CONFIGURE');
    t.is(exit.exit_reason, p.KVM_EXIT_HEKI_CONFIGURE);
    t.deepEqual({ ...exit.heki_configure }, { reason: CR0_REASON, cr_pinned: WP });
    t.is(g.regs().rip, BigInt(op.entry), 'the VMCALL waits for the completion');
    t.is(g.regs().rax, LOCK, 'RAX is not written yet');
    // While the VMM handles the exit, the pin already holds on the other vCPU.
    const other = writeCr(g, 0, g.cr(0, 1) & ~WP, 1);
    t.deepEqual(other.fault, gpAt(other.entry));
    // The VMM cannot change the result.
    g.setRegs({ rax: 77n });
    const out = g.finish();
    t.is(out.fault, null);
    t.is(out.regs.rax, 0n);
    t.is(out.regs.rip, BigInt(op.epilogue + 1));
    t.is(g.vcpu().stat.hypercalls, 1, 'counted once, by the completion (the exit returns before kvm_emulate_hypercall() counts)');
  });

  test(`case 10 (${profile}): both caps report 3; a refused mask changes nothing; masks are assigned, not ORed`, (t) => {
    const g = new Guest({ profile, kvm: { profile } });
    const p = abi.HEKI_PROFILES[profile];
    for (const cap of [p.KVM_CAP_HEKI_CONFIGURE, p.KVM_CAP_HEKI_DENIAL]) {
      t.is(g.vm.checkExtension(cap), 3);
      t.is(g.kvm.checkExtension(cap), 3);
    }
    g.vm.enableCap(p.KVM_CAP_HEKI_CONFIGURE, [3]);
    t.throws(() => g.vm.enableCap(p.KVM_CAP_HEKI_CONFIGURE, [4]), { instanceOf: KvmError, code: 'EINVAL' });
    g.start('vmcall', { rax: LOCK, rbx: 0n, rcx: WP, rdx: 0n });
    t.is(g.runExpecting('KVM_EXIT_HEKI_CONFIGURE').heki_configure.reason, CR0_REASON, 'the mask is still 3');
    g.finish();
    g.vm.enableCap(p.KVM_CAP_HEKI_CONFIGURE, [CR4_REASON]);
    t.is(lockCr(g, 0n, WP), 0n, 'CR0 no longer in the mask: no exit');
    g.vm.enableCap(p.KVM_CAP_HEKI_CONFIGURE, [0]);
    t.is(lockCr(g, 4n, SMEP), 0n, 'mask 0: no exit');
  });
}

test('case 11: pins are per VM and only grow: set on vCPU 0, enforced on vCPU 1, ORed by a second call', (t) => {
  const g = new Guest({ vcpus: 2 });
  t.is(lockCr(g, 4n, SMEP, 0n, 0), 0n);
  const v1 = writeCr(g, 4, g.cr(4, 1) & ~SMEP, 1);
  t.deepEqual(v1.fault, gpAt(v1.entry));
  t.is(lockCr(g, 4n, SMAP, 0n, 1), 0n);
  t.is(g.vm.hekiPins.cr4, SMEP | SMAP);
  // No hypercall takes a pin back: smaller pins and refused calls leave both.
  t.is(lockCr(g, 4n, abi.X86_CR4_UMIP), 0n);
  t.is(lockCr(g, 4n, 0n), EINVAL);
  t.is(g.vm.hekiPins.cr4, SMEP | SMAP | abi.X86_CR4_UMIP);
  const smap = writeCr(g, 4, g.cr(4) & ~SMAP);
  t.deepEqual(smap.fault, gpAt(smap.entry));
});

test('case 11: pins survive INIT and a re-boot; only resetHekiPins() clears them', (t) => {
  const g = new Guest();
  t.is(lockCr(g, 4n, SMEP), 0n);
  t.is(lockCr(g, 0n, WP), 0n);
  g.vcpu().init();
  t.is(g.runExpecting('KVM_EXIT_FAIL_ENTRY').fail_entry.hardware_entry_failure_reason, 0x8000_0021n);
  g.reboot();
  t.deepEqual(g.vm.hekiPins, { cr0: WP, cr4: SMEP });
  const cr4 = writeCr(g, 4, g.cr(4) & ~SMEP);
  t.deepEqual(cr4.fault, gpAt(cr4.entry));
  g.vm.resetHekiPins();
  t.deepEqual(g.vm.hekiPins, { cr0: 0n, cr4: 0n });
  t.is(writeCr(g, 4, g.cr(4) & ~SMEP).fault, null);
  t.is(writeCr(g, 0, g.cr(0) & ~WP).fault, null);
});

test('INIT drops the #GP a DENIAL completion queued when KVM_RUN returned at once (immediate_exit)', (t) => {
  const g = new Guest();
  g.vm.enableCap(g.vm.profile.KVM_CAP_HEKI_DENIAL, [CR4_REASON]);
  t.is(lockCr(g, 4n, SMEP), 0n);
  g.start('writeCr4', { rax: g.cr(4) & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_HEKI_DENIAL');
  exit.immediate_exit = true;
  g.runExpecting('KVM_EXIT_INTR');
  exit.immediate_exit = false;
  t.is(g.faultRecord().count, 0, 'the completion queued the #GP; the guest has not run');
  g.vcpu().init();
  g.runExpecting('KVM_EXIT_FAIL_ENTRY');
  g.reboot();
  t.is(g.finish().faults, 0, 'the booted vCPU halts without a #GP from before the INIT');
});

test('case 12: KVM_SET_SREGS may clear a pinned bit (host writes bypass Heki); the guest still may not', (t) => {
  const g = new Guest();
  t.is(lockCr(g, 4n, SMEP), 0n);
  const sregs = g.vcpu().getSregs();
  const cleared = sregs.cr4 & ~SMEP;
  t.notThrows(() => g.vcpu().setSregs({ ...sregs, cr4: cleared }));
  t.is(g.cr(4), cleared);
  const again = writeCr(g, 4, cleared);
  t.deepEqual(again.fault, gpAt(again.entry));
});

/**
 * kvm_init_heki() then kvm_lock_crs() as the RFC v2 guest runs them (docs/heki.md §4.2, §4.3):
 * the version query (return if < 1), CR0 WP (return on any non-zero result), then CR4 &
 * cr4_pinned_mask (SMEP|SMAP|UMIP|FSGSBASE|CET = 0xb10800). Ends in HLT with the last result
 * in RAX.
 */
const KVM_LOCK_CRS = [
  'b8 0d 00 00 00 | mov eax, 0xd',
  '31 db | xor ebx, ebx',
  '31 c9 | xor ecx, ecx',
  'ba 01 00 00 00 | mov edx, 1',
  '0f 01 c1 | vmcall',
  '48 83 f8 01 | cmp rax, 1',
  '7c 2f | jl short 0x100046',
  'b8 0d 00 00 00 | mov eax, 0xd',
  '31 db | xor ebx, ebx',
  'b9 00 00 01 00 | mov ecx, 0x10000',
  '31 d2 | xor edx, edx',
  '0f 01 c1 | vmcall',
  '48 85 c0 | test rax, rax',
  '75 19 | jne short 0x100046',
  '0f 20 e1 | mov rcx, cr4',
  '48 81 e1 00 08 b1 00 | and rcx, 0xb10800',
  'b8 0d 00 00 00 | mov eax, 0xd',
  'bb 04 00 00 00 | mov ebx, 4',
  '31 d2 | xor edx, edx',
  '0f 01 c1 | vmcall',
  'f4 | hlt',
];

test('case 13: the guest\'s discovery and pin order: version ≥ 1, CR0 WP, then CR4 & cr4_pinned_mask; a failed CR0 lock skips CR4', (t) => {
  const run = (options: GuestOptions): { rax: bigint; hypercalls: number; pins: { cr0: bigint; cr4: bigint } } => {
    const g = new Guest(options);
    g.startCode(KVM_LOCK_CRS);
    const out = g.finish();
    if (out.fault !== null) throw new Error(`fault ${out.fault.vector}`);
    return { rax: out.regs.rax, hypercalls: g.vcpu().stat.hypercalls, pins: g.vm.hekiPins };
  };
  const cr4Pins = SMEP | SMAP | abi.X86_CR4_UMIP | abi.X86_CR4_FSGSBASE;
  t.deepEqual(run({}), { rax: 0n, hypercalls: 3, pins: { cr0: WP, cr4: cr4Pins } });
  // A host whose CR0 lacks WP refuses the CR0 pin: the guest stops there.
  t.deepEqual(run({ hostCr0: DEFAULT_HOST_CR0 & ~WP }), { rax: EINVAL, hypercalls: 2, pins: { cr0: 0n, cr4: 0n } });
});
