/**
 * pinbox's CR filter at the KVM API (docs/cr-filter.md): installed like KVM's MSR filter —
 * whole or not at all — it sends every guest write that would change a masked bit of CR0 or
 * CR4, by MOV to CR, LMSW or CLTS, to user space first, which answers allow, deny (#GP(0), RIP
 * on the instruction) or a value, completed on the next KVM_RUN. Expectations come from that
 * design and from the instruction semantics (Intel SDM vol. 2: LMSW loads CR0[3:0] and never
 * clears PE; CLTS clears TS), never from running pinbox.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest } from './guest.js';

const SMEP = abi.X86_CR4_SMEP;
const SMAP = abi.X86_CR4_SMAP;
const WP = abi.X86_CR0_WP;
const TS = abi.X86_CR0_TS;
const MP = abi.X86_CR0_MP;
const GP = abi.GP_VECTOR;
/** pinbox's boot state (docs/boot.md): CR0 0x80050033; CR4 0x6a0 | SMEP | SMAP | UMIP | FSGSBASE. */
const BOOT_CR0 = 0x80050033n;
const BOOT_CR4 = 0x310ea0n;

function filterOn(g: Guest, cr0Mask: bigint, cr4Mask: bigint): void {
  g.vm.setCrFilter({ flags: 0, cr0Mask, cr4Mask });
}

test('KVM_CHECK_EXTENSION: the CR filter can mask CR0 and CR4 (0x11); the intercepts all TLFS bits but XCr0Write and SGX', (t) => {
  const g = new Guest();
  t.is(g.vm.checkExtension(abi.KVM_CAP_PINBOX_CR_FILTER), 0x11);
  t.is(g.vm.checkExtension(abi.KVM_CAP_PINBOX_REG_INTERCEPTS), 0x00ff_fffb);
  t.is(g.kvm.checkExtension(abi.KVM_CAP_PINBOX_CR_FILTER), 0x11, 'on the system fd too');
  t.is(abi.KVM_CAP_PINBOX_CR_FILTER, 0x5042_0001);
  t.is(abi.KVM_EXIT_PINBOX_CR_FILTER, 0x5042_0001);
});

test('a MOV to CR4 that clears a masked bit exits first with the register, the access, old and new values and RIP', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  const op = g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(exit.exit_reason, abi.KVM_EXIT_PINBOX_CR_FILTER);
  t.is(exit.cr_filter.cr, 4);
  t.is(exit.cr_filter.access, abi.PINBOX_CR_ACCESS_MOV);
  t.is(exit.cr_filter.old_value, BOOT_CR4);
  t.is(exit.cr_filter.new_value, BOOT_CR4 & ~SMEP);
  t.is(exit.cr_filter.rip, BigInt(op.entry));
  t.is(exit.cr_filter.action, abi.PINBOX_ANSWER_ALLOW, 'KVM presets allow');
  t.is(g.cr(4), BOOT_CR4, 'nothing is loaded before the answer');
});

test('deny: #GP(0) with RIP on the MOV and CR4 unchanged', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  const op = g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER').cr_filter.action = abi.PINBOX_ANSWER_DENY;
  const out = g.finish();
  t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(out.faults, 1, 'one #GP, no #DF');
  t.is(g.cr(4), BOOT_CR4);
});

test('allow: the write goes on and loads; a value: that value is loaded instead', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP | SMAP);
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(g.finish().fault, null);
  t.is(g.cr(4), BOOT_CR4 & ~SMEP);

  g.start('writeCr4', { rax: BOOT_CR4 & ~SMAP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(exit.cr_filter.old_value, BOOT_CR4 & ~SMEP);
  exit.cr_filter.action = abi.PINBOX_ANSWER_VALUE;
  exit.cr_filter.value = BOOT_CR4;
  t.is(g.finish().fault, null);
  t.is(g.cr(4), BOOT_CR4, 'user space\'s value, SMEP set again, SMAP kept');
});

test('a substituted value is checked as a MOV to CR would be: a reserved CR4 bit is #GP(0)', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  const op = g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  exit.cr_filter.action = abi.PINBOX_ANSWER_VALUE;
  exit.cr_filter.value = BOOT_CR4 | (1n << 15n); // CR4 bit 15 is reserved
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(g.cr(4), BOOT_CR4);
});

test('writes that change no masked bit do not exit: the same value, or other bits', (t) => {
  const g = new Guest();
  filterOn(g, WP, SMEP);
  g.start('writeCr4', { rax: BOOT_CR4 });
  t.is(g.finish().fault, null);
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMAP });
  t.is(g.finish().fault, null);
  t.is(g.cr(4), BOOT_CR4 & ~SMAP);
  g.start('writeCr0', { rax: BOOT_CR0 & ~abi.X86_CR0_AM });
  t.is(g.finish().fault, null);
});

test('LMSW and CLTS exit too, with their access types 3 and 2 and the value each would load', (t) => {
  const g = new Guest();
  // TS set before the filter, by a write it does not see.
  g.start('writeCr0', { rax: BOOT_CR0 | TS });
  t.is(g.finish().fault, null);
  filterOn(g, TS | MP, 0n);
  // LMSW AX = 0x1 loads PE=1, MP=0, EM=0, TS=0 into CR0[3:0]: MP and TS change.
  g.start('lmsw', { rax: 0x1n });
  const lmsw = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(lmsw.cr_filter.cr, 0);
  t.is(lmsw.cr_filter.access, abi.PINBOX_CR_ACCESS_LMSW);
  t.is(lmsw.cr_filter.new_value, (BOOT_CR0 | TS) & ~(TS | MP));
  lmsw.cr_filter.action = abi.PINBOX_ANSWER_DENY;
  t.is(g.finish().fault?.vector, GP);
  t.is(g.cr(0), BOOT_CR0 | TS);

  g.start('clts');
  const clts = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(clts.cr_filter.access, abi.PINBOX_CR_ACCESS_CLTS);
  t.is(clts.cr_filter.new_value, BOOT_CR0);
  t.is(g.finish().fault, null, 'allowed');
  t.is(g.cr(0), BOOT_CR0, 'TS cleared');
});

test('install is all or nothing: a refused filter (flags, an XCR0 mask, a non-bigint) leaves the old in force', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  const bad: unknown[] = [
    { flags: 1, cr0Mask: 0n, cr4Mask: 0n },
    { flags: 0, cr0Mask: 0n, cr4Mask: 0n, xcr0Mask: 1n },
    { flags: 0, cr0Mask: WP, cr4Mask: 5 },
    { flags: 0, cr0Mask: -1n, cr4Mask: 0n },
    null,
  ];
  for (const f of bad) {
    const e = t.throws(() => g.vm.setCrFilter(f as never), { instanceOf: KvmError });
    t.is(e?.code, 'EINVAL');
  }
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  t.is(g.run().reason, 'KVM_EXIT_PINBOX_CR_FILTER', 'the first filter still stands');
  g.finish();
  g.vm.setCrFilter({ flags: 0, cr0Mask: 0n, cr4Mask: 0n });
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMAP });
  t.is(g.finish().fault, null, 'an empty filter filters nothing');
});

test('a filter replaced while a vCPU sits in the exit: the answer still completes the write', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  g.vm.setCrFilter({ flags: 0, cr0Mask: 0n, cr4Mask: 0n });
  exit.cr_filter.action = abi.PINBOX_ANSWER_DENY;
  t.is(g.finish().fault?.vector, GP);
  t.is(g.cr(4), BOOT_CR4);
});

test('an answer a C field cannot hold is EINVAL and changes nothing; a good one then completes', (t) => {
  const g = new Guest();
  filterOn(g, 0n, SMEP);
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  exit.cr_filter.action = 3;
  t.is(t.throws(() => g.run(), { instanceOf: KvmError })?.code, 'EINVAL');
  exit.cr_filter.action = abi.PINBOX_ANSWER_VALUE;
  exit.cr_filter.value = -1n;
  t.is(t.throws(() => g.run(), { instanceOf: KvmError })?.code, 'EINVAL');
  t.is(g.cr(4), BOOT_CR4);
  exit.cr_filter.action = abi.PINBOX_ANSWER_DENY;
  t.is(t.throws(() => g.run(), { instanceOf: KvmError })?.code, 'EINVAL', 'value is a u64 field whatever the action');
  exit.cr_filter.value = 0n;
  t.is(g.finish().fault?.vector, GP);
});

test('the filter comes before Heki: allowed by user space, a pinned bit is still refused — by an exit from the completion when asked', (t) => {
  for (const denialExits of [false, true]) {
    const g = new Guest();
    g.start('vmcall', { rax: BigInt(abi.KVM_HC_LOCK_CR_UPDATE), rbx: 4n, rcx: SMEP });
    t.is(g.finish().regs.rax, 0n);
    if (denialExits) g.vm.enableCap(g.vm.profile.KVM_CAP_HEKI_DENIAL, [BigInt(abi.KVM_HEKI_EXIT_REASON_CR4)]);
    filterOn(g, 0n, SMEP);
    g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
    g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
    if (denialExits) {
      const denial = g.runExpecting('KVM_EXIT_HEKI_DENIAL');
      t.is(denial.heki_denial.cr_value, BOOT_CR4 & ~SMEP);
    }
    t.is(g.finish().fault?.vector, GP);
    t.is(g.cr(4), BOOT_CR4);
  }
});

test('host writes (KVM_SET_SREGS) are not filtered', (t) => {
  const g = new Guest();
  filterOn(g, WP, SMEP);
  const s = g.vcpu().getSregs();
  g.vcpu().setSregs({ ...s, cr4: BOOT_CR4 & ~SMEP });
  t.is(g.cr(4), BOOT_CR4 & ~SMEP);
});
