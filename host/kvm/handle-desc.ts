/**
 * Descriptor-table loads: handle_desc() in arch/x86/kvm/vmx/vmx.c, for the exits pinbox turns on
 * only while a vCPU has a GDTR, IDTR, LDTR or TR secure register intercept (reg-intercepts.ts;
 * the core stops at LGDT, LIDT, LLDT and LTR as VMX's descriptor-table exiting makes it).
 *
 * A load the vCPU's intercepts do not cover is executed at once, as KVM's emulator would. One
 * they cover exits to user space (KVM_EXIT_PINBOX_REG_INTERCEPT) with the register now and the
 * value the instruction would load; the monitor's answer completes it: allow executes the
 * instruction (its descriptor checks, LTR's busy bit, its faults included), deny is #GP(0), and a
 * value emulates LGDT/LIDT with the monitor's base and limit. LLDT and LTR load a descriptor, not
 * a value: for them only allow and deny are answers (EINVAL otherwise).
 */
import { PINBOX_ANSWER_DENY, PINBOX_ANSWER_VALUE } from '../../protocol/abi.js';
import type { Intercept } from '../x86/intercept.js';
import { KvmError } from './api/errors.js';
import { isCanonicalAddress } from './msrs/canonical.js';
import { checkRegInterceptReply, regInterceptExit } from './pinbox-exits.js';
import type { DescriptorTableRegister } from './reg-intercepts.js';
import type { VcpuArch } from './vcpu-arch.js';

type TableInsn = Extract<Intercept, { kind: 'descriptor_table' }>['insn'];

const TABLE_OF: Readonly<Record<TableInsn, DescriptorTableRegister>> = { lgdt: 'gdtr', lidt: 'idtr', lldt: 'ldtr', ltr: 'tr' };

/** A descriptor-table load; true when it ends in an exit to user space. */
export function handleDesc(v: VcpuArch, insn: TableInsn, base: bigint, limit: number, selector: number): boolean {
  const table = TABLE_OF[insn];
  const bit = v.regIntercepts.tableLoad(table);
  if (bit < 0) {
    v.cpu.executeIntercepted();
    return false;
  }
  v.tableLoad = table;
  const s = v.cpu.getSregs();
  const access = table === 'gdtr' ? { msr: 0, oldValue: s.gdt.base, newValue: base, oldLimit: s.gdt.limit, newLimit: limit }
    : table === 'idtr' ? { msr: 0, oldValue: s.idt.base, newValue: base, oldLimit: s.idt.limit, newLimit: limit }
    : { msr: 0, oldValue: BigInt(table === 'ldtr' ? s.ldt.selector : s.tr.selector), newValue: BigInt(selector), oldLimit: 0, newLimit: 0 };
  return regInterceptExit(v, bit, access, completeRegInterceptDescExit);
}

/** The monitor's answer to a descriptor-table intercept. */
function completeRegInterceptDescExit(v: VcpuArch): boolean {
  const r = v.run.reg_intercept;
  if (r.action === PINBOX_ANSWER_DENY) {
    v.injectGp();
    return false;
  }
  if (r.action !== PINBOX_ANSWER_VALUE) {
    v.cpu.executeIntercepted();
    return false;
  }
  // Emulating LGDT/LIDT with the monitor's value: what the instruction would do with it.
  if (!isCanonicalAddress(r.value, 48)) {
    v.injectGp();
    return false;
  }
  const s = v.cpu.getSregs();
  const loaded = { base: r.value, limit: r.limit };
  v.cpu.setSregs(v.tableLoad === 'gdtr' ? { ...s, gdt: loaded } : { ...s, idt: loaded });
  v.skipEmulatedInstruction();
  return false;
}
completeRegInterceptDescExit.checkReply = (v: VcpuArch): void => {
  checkRegInterceptReply(v);
  if (v.run.reg_intercept.action === PINBOX_ANSWER_VALUE && (v.tableLoad === 'ldtr' || v.tableLoad === 'tr')) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.reg_intercept.action: ${v.tableLoad === 'ldtr' ? 'LLDT' : 'LTR'} loads a descriptor and cannot be emulated with a value (allow or deny)`);
  }
};
