/**
 * The model's vCPU file descriptor, the KvmVcpu of host/kvm/api/vcpu.ts: KVM_RUN and the vCPU
 * ioctls, plus the model's own calls (ModelVcpu: the instruction count, INIT, the exception-loop
 * watch). `run()` mirrors
 * vcpu_run() / vcpu_enter_guest(): it first finishes the completion the previous exit left
 * (complete_userspace_io), then lets the core run and handles each intercept in the kernel until
 * one needs user space.
 */
import { Errno, KVM_CAP_ENFORCE_PV_FEATURE_CPUID } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import type { ChainedException } from '../x86/intercept.js';
import type { GuestCpuid, GuestCpuidOptions } from './api/cpuid.js';
import type { RegInterceptSpec } from './api/cr-hardening.js';
import { KvmError } from './api/errors.js';
import type { KvmRun, VcpuExit } from './api/exits.js';
import type { ExceptionLoop, ModelVcpu } from './api/model.js';
import type { Regs, Sregs } from './api/regs.js';
import type { ExceptionEvent, GuestDebug, KvmVcpu, MsrEntry, RunOptions } from './api/vcpu.js';
import { enableCapArgs } from './capabilities.js';
import { resolveGuestCpuid } from './cpuid.js';
import { handleExit } from './exit-handlers.js';
import { kvmArchVcpuIoctlSetGuestDebug, kvmGetRflags, kvmSetRflags, kvmVcpuDoSinglestep } from './guest-debug.js';
import { kvmMsrIo } from './msr-table.js';
import { beforeGuestRuns, beforeRegistersChange, checkSyncMasks, storeRegs, syncRegs } from './sync-regs.js';
import { isU32, toU64 } from './u64.js';
import { VcpuArch, type VcpuStat } from './vcpu-arch.js';
import { checkExceptionEvent } from './vcpu-events.js';
import { kvmVcpuReset } from './vcpu-reset.js';
import { checkRegs, checkSregs } from './vcpu-state.js';
import { DeadlineWatch } from './deadline-watch.js';
import type { VmArch } from './vm-arch.js';
import { vmxExitName } from './vmx-exit-reasons.js';
import { hex } from '../../protocol/notation.js';

/** MAX_IO_MSRS: KVM_GET/SET_MSRS take fewer than 256 entries (E2BIG otherwise). */
const MAX_IO_MSRS = 256;

export class Vcpu implements KvmVcpu, ModelVcpu {
  private readonly arch: VcpuArch;
  /** How run() keeps RunOptions.deadline: looks at the clock between slices of guest work. */
  private readonly watch = new DeadlineWatch();

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
  get kvmRun(): KvmRun {
    return this.arch.run.asPage();
  }

  /** The model's own calls (host/kvm/api/model.ts): the instruction count and INIT. */
  get model(): ModelVcpu {
    return this;
  }

  /** Guest instructions the core has retired (ModelVcpu). */
  get instructionsRetired(): number {
    return this.arch.cpu.instructionsRetired;
  }

  /** Faults the core has delivered, each a unit of the run budget (ModelVcpu). */
  get eventsDelivered(): number {
    return this.arch.cpu.eventsDelivered;
  }

  /** The exception loop that ended the last run(), or null (ModelVcpu). */
  get exceptionLoop(): ExceptionLoop | null {
    return this.arch.cpu.exceptionLoop;
  }

  /** KVM_REQ_TRIPLE_FAULT made by injectTripleFault, not yet served; INIT drops it. */
  private tripleFaultPending = false;

  /** A kick is pending (ModelVcpu.kick). */
  private kicked = false;

  /**
   * ModelVcpu.kick: what a VMM's signal to the vCPU thread does (pthread_kill, then
   * kvm_vcpu_kick()): the KVM_RUN under way returns KVM_EXIT_INTR once the intercept KVM is
   * handling is done, before the guest runs on. A kick while no KVM_RUN is under way is dropped
   * by the next one (the VMM asks for it only from inside KVM_RUN: a tracepoint listener).
   */
  kick(): void {
    this.kicked = true;
  }

  /** The exceptions of the last triple fault (ModelVcpu). */
  get shutdownChain(): readonly ChainedException[] | undefined {
    return this.arch.shutdownChain;
  }

  /** A snapshot of the vCPU's counters. */
  get stat(): Readonly<VcpuStat> {
    return { ...this.arch.stat };
  }

  /** KVM_RUN, within RunOptions' instruction budget and deadline (host/kvm/api/vcpu.ts). */
  run(options?: RunOptions): VcpuExit {
    const v = this.arch;
    const budget = options?.budget ?? Infinity;
    if (budget !== Infinity && (!Number.isSafeInteger(budget) || budget < 1)) {
      throw new KvmError('EINVAL', 'KVM_RUN', `budget must be a positive integer, got ${String(budget)}`);
    }
    const deadline = options?.deadline;
    if (deadline !== undefined && typeof deadline !== 'bigint') {
      throw new KvmError('EINVAL', 'KVM_RUN', `deadline must be a bigint (ns, process.hrtime.bigint()), got ${String(deadline)}`);
    }
    const run = v.run;
    this.kicked = false;
    // kvm_arch_vcpu_ioctl_run(): the sync masks are checked and the dirty registers loaded
    // before the pending completion runs (sync-regs.ts).
    checkSyncMasks(run);
    const cui = v.completeUserspaceIo;
    if (cui !== null && cui.checkReply !== undefined) cui.checkReply(v);
    beforeRegistersChange(run);
    if (run.kvm_dirty_regs !== 0) syncRegs(run, v.cpu, (sregs) => this.setSregs(sregs));
    if (cui !== null) {
      // complete-userspace-io.ts: cleared before it runs, so that it may store another.
      v.completeUserspaceIo = null;
      if (cui(v)) return this.toUserSpace();
    }
    // A step that ended in an exit to user space (or its completion) ends now.
    if (v.singlestepPending && kvmVcpuDoSinglestep(v)) return this.toUserSpace();
    beforeGuestRuns(run, v.cpu);
    if (this.tripleFaultPending) {
      // vcpu_enter_guest(): kvm_check_request(KVM_REQ_TRIPLE_FAULT) ends the run with a shutdown.
      this.tripleFaultPending = false;
      v.exitToUserSpace('KVM_EXIT_SHUTDOWN');
      return this.toUserSpace();
    }
    if (run.immediate_exit) {
      v.stat.signal_exits++;
      v.exitToUserSpace('KVM_EXIT_INTR');
      return this.toUserSpace();
    }
    // A deadline already passed: its signal is pending, and KVM_RUN returns before the guest runs.
    const watch = this.watch;
    if (deadline !== undefined && !watch.begin(deadline)) return this.timedOut();
    v.hasRun = true;
    const cpu = v.cpu;
    let remaining = budget === Infinity ? Number.MAX_SAFE_INTEGER : budget;
    for (;;) {
      const limit = deadline === undefined || remaining < watch.left ? remaining : watch.left;
      const before = cpu.instructionsRetired + cpu.eventsDelivered;
      const intercept = cpu.run(limit);
      // What the core spent (instructions and fault deliveries); an intercept that spent nothing
      // still costs a unit, so a budgeted run always ends.
      const spent = Math.max(1, cpu.instructionsRetired + cpu.eventsDelivered - before);
      remaining -= spent;
      // The slice was spent, not the budget (nor an exception loop found): no exit, a look at the clock.
      if (deadline !== undefined && intercept.kind === 'budget' && remaining > 0 && spent >= limit && cpu.exceptionLoop === null) {
        if (watch.spend(spent)) return this.timedOut();
        continue;
      }
      v.stat.exits++;
      if (v.vm.trace.active) v.vm.trace.emit('kvm_exit', { vcpu_id: v.id, exit_reason: vmxExitName(intercept), guest_rip: cpu.getRip() });
      let toUser: boolean;
      try {
        toUser = handleExit(v, intercept);
      } catch (e) {
        if (e instanceof KvmError && v.vm.trace.active) {
          v.vm.trace.emit('kvm_userspace_exit', { vcpu_id: v.id, reason: run.exit_reason, errno: -e.errno });
        }
        throw e;
      }
      // The work counts against the deadline's slice whether or not the exit goes to user space;
      // a deadline found passed with an exit to return ends the next run at once.
      const late = deadline !== undefined && watch.spend(spent);
      if (toUser) {
        // KVM_EXIT_MEMORY_FAULT is the one exit KVM_RUN reports by failing, with -EFAULT (api.rst):
        // kvm_run is filled and user space reads it after the error.
        if (run.reason === 'KVM_EXIT_MEMORY_FAULT') {
          this.toUserSpace(-Errno.EFAULT);
          throw new KvmError('EFAULT', 'KVM_RUN', 'KVM_EXIT_MEMORY_FAULT: kvm_run.memory_fault holds the refused access');
        }
        return this.toUserSpace();
      }
      if (v.singlestepPending && kvmVcpuDoSinglestep(v)) return this.toUserSpace();
      if (this.kicked) {
        // The signal a kick stands for is pending: KVM_RUN returns before the guest runs on.
        this.kicked = false;
        v.stat.signal_exits++;
        v.exitToUserSpace('KVM_EXIT_INTR');
        return this.toUserSpace();
      }
      if (remaining <= 0) {
        v.stat.signal_exits++;
        v.exitToUserSpace('KVM_EXIT_INTR');
        return this.toUserSpace();
      }
      if (late) return this.timedOut();
    }
  }

  /** RunOptions.deadline passed: KVM_EXIT_INTR, as the real backend's timer signal gives it. */
  private timedOut(): VcpuExit {
    const v = this.arch;
    v.stat.signal_exits++;
    v.exitToUserSpace('KVM_EXIT_INTR');
    v.run.timed_out = true;
    return this.toUserSpace();
  }

  /** post_kvm_run_save(): CR8 and APIC_BASE travel with every exit. */
  private toUserSpace(errno = 0): VcpuExit {
    const v = this.arch;
    const run = v.run;
    if (run.kvm_valid_regs !== 0) storeRegs(run, v.cpu, () => this.getSregs());
    run.cr8 = v.lapic.getCr8();
    run.apic_base = v.lapic.apicBase;
    if (v.vm.trace.active) v.vm.trace.emit('kvm_userspace_exit', { vcpu_id: v.id, reason: run.exit_reason, errno });
    return run.asExit();
  }

  /** KVM_GET_REGS */
  getRegs(): Regs {
    const regs = this.arch.cpu.getRegs();
    regs.rflags = kvmGetRflags(this.arch, regs.rflags);
    return regs;
  }

  /** KVM_SET_REGS */
  setRegs(regs: Regs): void {
    checkRegs(regs);
    this.arch.run.s.regs.registersChanging();
    this.arch.cpu.setRegs({ ...regs, rflags: kvmSetRflags(this.arch, regs.rflags, regs.rip) });
  }

  /** KVM_SET_GUEST_DEBUG (guest-debug.ts). */
  setGuestDebug(debug: GuestDebug): void {
    kvmArchVcpuIoctlSetGuestDebug(this.arch, debug);
  }

  /**
   * KVM_SET_VCPU_EVENTS (exception part): checked (vcpu-events.ts), then queued in place of any
   * exception pending, with the payload as CR2 for #PF.
   */
  injectException(event: ExceptionEvent): void {
    const { vector, errorCode, payload } = checkExceptionEvent(event);
    this.arch.injectException(vector, errorCode, vector === 14 ? payload : undefined);
  }

  /** KVM_GET_VCPU_EVENTS (exception part): the exception queued and not yet delivered. */
  queuedException(): ExceptionEvent | undefined {
    const q = this.arch.cpu.queuedException;
    if (q === null) return undefined;
    return { vector: q.vector, ...(q.errorCode !== undefined && { errorCode: q.errorCode }), ...(q.cr2 !== undefined && { payload: q.cr2 }) };
  }

  /**
   * KVM_SET_VCPU_EVENTS (triple_fault.pending): KVM_REQ_TRIPLE_FAULT, served by the next KVM_RUN;
   * EINVAL unless the VM enabled KVM_CAP_X86_TRIPLE_FAULT_EVENT (kvm_vcpu_ioctl_x86_set_vcpu_events()).
   */
  injectTripleFault(): void {
    if (!this.arch.vm.tripleFaultEvent) {
      throw new KvmError('EINVAL', 'KVM_SET_VCPU_EVENTS', 'triple_fault needs KVM_CAP_X86_TRIPLE_FAULT_EVENT enabled on the VM');
    }
    this.tripleFaultPending = true;
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
      throw new KvmError('EINVAL', 'KVM_SET_SREGS', `APIC base ${hex(sregs.apicBase)} is refused`);
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
    this.tripleFaultPending = false;
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

  /**
   * PINBOX_SET_REG_INTERCEPTS (reg-intercepts.ts): this vCPU's secure register intercepts, all
   * checked before any changes. The core stops at LGDT/LIDT/LLDT/LTR only while a
   * descriptor-table intercept is set (as VMX's descriptor-table exiting control).
   */
  setRegisterIntercepts(spec: RegInterceptSpec): void {
    const v = this.arch;
    v.regIntercepts.set(spec);
    v.cpu.descriptorTableExiting = v.regIntercepts.descriptorTables;
  }

  /** PINBOX_GET_REG_INTERCEPTS */
  getRegisterIntercepts(): RegInterceptSpec {
    return this.arch.regIntercepts.get();
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
