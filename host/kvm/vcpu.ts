/**
 * The vCPU file descriptor: KVM_RUN and the vCPU ioctls, in the manner of rust-vmm's
 * kvm-ioctls `VcpuFd`. `run()` mirrors vcpu_run() / vcpu_enter_guest(): it first finishes
 * the completion the previous exit left (complete_userspace_io), then lets the core run
 * and handles each intercept in the kernel until one needs user space.
 */
import { EXIT_REASON_INVALID_STATE, KVM_CAP_ENFORCE_PV_FEATURE_CPUID, VMX_EXIT_REASONS_FAILED_VMENTRY } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import type { Intercept } from '../x86/intercept.js';
import type { Regs, Sregs } from '../x86/state.js';
import { enableCapArgs } from './capabilities.js';
import { resolveGuestCpuid, type GuestCpuid, type GuestCpuidOptions } from './cpuid.js';
import { KvmError } from './errors.js';
import type { VcpuExit } from './exits.js';
import { completeHekiDenial, handleClts, handleLmsw, handleMovFromCr, handleMovToCr } from './handle-cr.js';
import { handleCpuid } from './handle-cpuid.js';
import { completeHekiConfigure, handleHypercall } from './handle-hypercall.js';
import { checkPioInReply, completePioIn, completePioOut, handleIo } from './handle-io.js';
import { checkMsrReply, completeRdmsr, completeWrmsr, handleRdmsr, handleWrmsr } from './handle-msr.js';
import { kvmMsrIo } from './msr-table.js';
import { beforeGuestRuns, beforeRegistersChange, checkSyncMasks, storeRegs, syncRegs } from './sync-regs.js';
import { isU32, toU64 } from './u64.js';
import { Completion, VcpuArch, type VcpuStat } from './vcpu-arch.js';
import { kvmVcpuReset } from './vcpu-reset.js';
import { checkRegs, checkSregs } from './vcpu-state.js';
import type { VmArch } from './vm-arch.js';

/** An MSR for KVM_GET_MSRS / KVM_SET_MSRS (`struct kvm_msr_entry`). */
export interface MsrEntry {
  index: number;
  data: bigint;
}

export interface RunOptions {
  /**
   * Guest instructions this call may retire before it returns KVM_EXIT_INTR, as if a
   * signal had interrupted KVM_RUN; unlimited by default, as KVM_RUN is. A fault the core
   * delivers costs a unit too, and an intercept that spends nothing still costs one, so a run
   * always ends; an exception loop ends it at once (the core's exceptionLoop says which). MODEL DECISION: the budget
   * stands in for the signal that would end KVM_RUN with -EINTR; it is reported, like
   * immediate_exit, as KVM_EXIT_INTR.
   */
  budget?: number;
}

/** MAX_IO_MSRS: KVM_GET/SET_MSRS take fewer than 256 entries (E2BIG otherwise). */
const MAX_IO_MSRS = 256;

export class Vcpu {
  private readonly arch: VcpuArch;

  /** @internal Created by `Vm.createVcpu()`; starts in the RESET state. */
  constructor(id: number, cpu: GuestCpu, vm: VmArch) {
    this.arch = new VcpuArch(id, cpu, vm);
    // KVM intercepts no exception by default: every fault goes to the guest's IDT.
    cpu.exceptionBitmap = 0;
    kvmVcpuReset(this.arch, false);
  }

  get id(): number {
    return this.arch.id;
  }

  /** The kvm_run mirror that `run()` returns and user space edits. */
  get kvmRun(): VcpuExit {
    return this.arch.run.asExit();
  }

  /** A snapshot of the vCPU's counters. */
  get stat(): Readonly<VcpuStat> {
    return { ...this.arch.stat };
  }

  /** KVM_RUN */
  run(options?: RunOptions): VcpuExit {
    const v = this.arch;
    const budget = options?.budget ?? Infinity;
    if (budget !== Infinity && (!Number.isSafeInteger(budget) || budget < 1)) {
      throw new KvmError('EINVAL', 'KVM_RUN', `budget must be a positive integer, got ${String(budget)}`);
    }
    const run = v.run;
    // kvm_arch_vcpu_ioctl_run(): the sync masks are checked and the dirty registers loaded
    // before the pending completion runs (sync-regs.ts).
    checkSyncMasks(run);
    this.checkUserspaceReply();
    beforeRegistersChange(run);
    if (run.kvm_dirty_regs !== 0) syncRegs(run, v.cpu, (sregs) => this.setSregs(sregs));
    if (v.pending !== Completion.None) this.completeUserspaceIo();
    beforeGuestRuns(run, v.cpu);
    if (run.immediate_exit) {
      v.stat.signal_exits++;
      run.setExit('KVM_EXIT_INTR');
      return this.toUserSpace();
    }
    v.hasRun = true;
    const cpu = v.cpu;
    let remaining = budget === Infinity ? Number.MAX_SAFE_INTEGER : budget;
    for (;;) {
      const before = cpu.instructionsRetired + cpu.eventsDelivered;
      const intercept = cpu.run(remaining);
      // What the core spent (instructions and fault deliveries); an intercept that spent nothing
      // still costs a unit, so a budgeted run always ends.
      remaining -= Math.max(1, cpu.instructionsRetired + cpu.eventsDelivered - before);
      v.stat.exits++;
      if (v.vm.trace.active) v.vm.trace.emit('kvm_exit', { vcpu_id: v.id, exit_reason: intercept.kind, guest_rip: cpu.getRip() });
      let toUser: boolean;
      try {
        toUser = this.handleIntercept(intercept);
      } catch (e) {
        if (e instanceof KvmError && v.vm.trace.active) {
          v.vm.trace.emit('kvm_userspace_exit', { vcpu_id: v.id, reason: run.exit_reason, errno: -e.errno });
        }
        throw e;
      }
      if (toUser) return this.toUserSpace();
      if (remaining <= 0) {
        v.stat.signal_exits++;
        run.setExit('KVM_EXIT_INTR');
        return this.toUserSpace();
      }
    }
  }

  /** The in-kernel handling of one intercept (the vmx.c exit handlers); true to exit. */
  private handleIntercept(ic: Intercept): boolean {
    const v = this.arch;
    switch (ic.kind) {
      case 'rdmsr':
        return handleRdmsr(v, ic.index);
      case 'wrmsr':
        return handleWrmsr(v, ic.index, ic.value);
      case 'mov_to_cr':
        return handleMovToCr(v, ic.cr, ic.value);
      case 'mov_from_cr':
        handleMovFromCr(v, ic.cr, ic.gpr);
        return false;
      case 'clts':
        return handleClts(v);
      case 'lmsw':
        return handleLmsw(v, ic.value);
      case 'hypercall':
        return handleHypercall(v);
      case 'cpuid':
        handleCpuid(v, ic.leaf, ic.subleaf);
        return false;
      case 'hlt':
        // kvm_emulate_halt() retires the HLT first. MODEL DECISION: with no interrupt to wake
        // it, a halted vCPU goes to user space as KVM_EXIT_HLT (KVM's no-in-kernel-irqchip path).
        v.cpu.skipInstruction();
        v.stat.halt_exits++;
        v.run.setExit('KVM_EXIT_HLT');
        return true;
      case 'io':
        handleIo(v, ic.port, ic.size, ic.in, ic.value);
        return true;
      case 'exception':
        // Only a core-set exception bitmap can cause this: hand the event back to the guest.
        v.injectException(ic.vector, ic.errorCode, ic.address);
        return false;
      case 'triple_fault':
        v.run.setExit('KVM_EXIT_SHUTDOWN');
        return true;
      case 'budget':
        v.stat.signal_exits++;
        v.run.setExit('KVM_EXIT_INTR');
        return true;
      case 'invalid_guest_state': {
        const run = v.run;
        run.setExit('KVM_EXIT_FAIL_ENTRY');
        run.fail_entry.hardware_entry_failure_reason = BigInt((VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE) >>> 0);
        run.fail_entry.cpu = 0;
        run.fail_entry.detail = ic.detail;
        return true;
      }
    }
  }

  /** What user space wrote for the pending completion must be valid before anything changes. */
  private checkUserspaceReply(): void {
    const v = this.arch;
    if (v.pending === Completion.Rdmsr) checkMsrReply(v, true);
    else if (v.pending === Completion.Wrmsr) checkMsrReply(v, false);
    else if (v.pending === Completion.PioIn) checkPioInReply(v);
  }

  /** vcpu->arch.complete_userspace_io(vcpu), run before anything else in KVM_RUN. */
  private completeUserspaceIo(): void {
    const v = this.arch;
    switch (v.pending) {
      case Completion.Rdmsr:
        completeRdmsr(v);
        break;
      case Completion.Wrmsr:
        completeWrmsr(v);
        break;
      case Completion.HekiConfigure:
        completeHekiConfigure(v);
        break;
      case Completion.HekiDenial:
        completeHekiDenial(v);
        break;
      case Completion.PioIn:
        completePioIn(v);
        break;
      case Completion.PioOut:
      case Completion.PioOutPort7e:
        completePioOut(v);
        break;
      case Completion.None:
        break;
    }
  }

  /** post_kvm_run_save(): CR8 and APIC_BASE travel with every exit. */
  private toUserSpace(): VcpuExit {
    const v = this.arch;
    const run = v.run;
    if (run.kvm_valid_regs !== 0) storeRegs(run, v.cpu, () => this.getSregs());
    run.cr8 = v.lapic.getCr8();
    run.apic_base = v.lapic.apicBase;
    if (v.vm.trace.active) v.vm.trace.emit('kvm_userspace_exit', { vcpu_id: v.id, reason: run.exit_reason, errno: 0 });
    return run.asExit();
  }

  /** KVM_GET_REGS */
  getRegs(): Regs {
    return this.arch.cpu.getRegs();
  }

  /** KVM_SET_REGS */
  setRegs(regs: Regs): void {
    checkRegs(regs);
    this.arch.run.s.regs.registersChanging();
    this.arch.cpu.setRegs({ ...regs });
  }

  /** KVM_GET_SREGS: CR8 and the APIC base come from the in-kernel LAPIC. */
  getSregs(): Sregs {
    const v = this.arch;
    return { ...v.cpu.getSregs(), cr8: v.lapic.getCr8(), apicBase: v.lapic.apicBase };
  }

  /**
   * KVM_SET_SREGS: all checks first (EINVAL names the field), then the APIC base
   * (kvm_apic_set_base() as the host), then the rest. A CR8 with reserved bits is ignored,
   * as __set_sregs_common() ignores kvm_set_cr8()'s failure.
   */
  setSregs(sregs: Sregs): void {
    const v = this.arch;
    checkSregs(sregs, v.cr4ReservedBits, v.cpuid.maxPhysAddr);
    if (v.lapic.setBase(sregs.apicBase, true, v.cpuid.maxPhysAddr) !== 0) {
      throw new KvmError('EINVAL', 'KVM_SET_SREGS', `APIC base 0x${sregs.apicBase.toString(16)} is refused`);
    }
    v.cpu.setSregs({ ...sregs });
    if ((sregs.cr8 & ~0xfn) === 0n) v.lapic.setCr8(sregs.cr8);
  }

  /**
   * KVM_GET_MSRS: host-initiated reads, never filtered; stops at the first MSR KVM cannot
   * read and returns the entries read before it.
   */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const ioctl = 'KVM_GET_MSRS';
    checkMsrCount(ioctl, indices);
    indices.forEach((index, i) => {
      if (!isU32(index)) throw new KvmError('EINVAL', ioctl, `indices[${i}] must be a u32, got ${String(index)}`);
    });
    const out: MsrEntry[] = [];
    kvmMsrIo(this.arch, this.arch.msrAccess, indices.map((index) => ({ index, data: 0n })), false, out);
    return out;
  }

  /**
   * KVM_SET_MSRS: host-initiated writes, never filtered, with the host's rules (e.g. 0 may
   * be written to any advertised MSR); returns how many were written before the first
   * failure.
   */
  setMsrs(entries: readonly MsrEntry[]): number {
    const ioctl = 'KVM_SET_MSRS';
    checkMsrCount(ioctl, entries);
    entries.forEach((e, i) => {
      if (typeof e !== 'object' || e === null || !isU32(e.index)) throw new KvmError('EINVAL', ioctl, `entries[${i}].index must be a u32`);
      if (typeof e.data !== 'bigint' || toU64(e.data) === undefined) throw new KvmError('EINVAL', ioctl, `entries[${i}].data must be a u64 bigint`);
    });
    return kvmMsrIo(this.arch, this.arch.msrAccess, entries, true);
  }

  /**
   * An INIT signal: kvm_vcpu_reset(init_event = true). The vCPU is left in real mode, which
   * the long-mode-only core cannot run (run() then gives KVM_EXIT_FAIL_ENTRY): the VMM boots
   * it again. Heki pins are per VM and survive; a completion still pending and an exception
   * queued for injection but not yet delivered are dropped (kvm_clear_exception_queue()).
   */
  init(): void {
    this.arch.run.s.regs.registersChanging();
    kvmVcpuReset(this.arch, true);
  }

  /** The vCPU's CPUID model (KVM_GET_CPUID2). */
  getCpuid(): GuestCpuid {
    return this.arch.cpuid;
  }

  /**
   * KVM_SET_CPUID2, by features: options not given keep the VM's guestCpuid. After the
   * first KVM_RUN only an identical model is accepted (EBUSY otherwise), as in
   * kvm_set_cpuid().
   */
  setCpuid(options: GuestCpuidOptions): void {
    const v = this.arch;
    const next = resolveGuestCpuid(options, 'KVM_SET_CPUID2', v.vm.guestCpuid);
    if (v.hasRun && JSON.stringify(next) !== JSON.stringify(v.cpuid)) {
      throw new KvmError('EBUSY', 'KVM_SET_CPUID2', 'the CPUID cannot change after the first KVM_RUN');
    }
    v.setCpuid(next);
  }

  /** KVM_ENABLE_CAP on the vCPU: only KVM_CAP_ENFORCE_PV_FEATURE_CPUID. */
  enableCap(cap: number, args: readonly (bigint | number)[] = [], flags = 0): void {
    const ioctl = `KVM_ENABLE_CAP(${cap})`;
    const a = enableCapArgs(ioctl, args, flags);
    if (cap !== KVM_CAP_ENFORCE_PV_FEATURE_CPUID) throw new KvmError('EINVAL', ioctl, 'not a vCPU capability pinbox knows');
    this.arch.pvEnforce = a[0] !== 0n;
  }
}

function checkMsrCount(ioctl: string, list: readonly unknown[]): void {
  if (!Array.isArray(list)) throw new KvmError('EINVAL', ioctl, 'expects an array');
  if (list.length >= MAX_IO_MSRS) throw new KvmError('E2BIG', ioctl, `${list.length} MSRs; at most ${MAX_IO_MSRS - 1} per call`);
}
