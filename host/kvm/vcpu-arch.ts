/**
 * The per-vCPU state of the "kernel" (`struct kvm_vcpu_arch`): the CPU it drives, the
 * KVM-owned MSRs, the LAPIC, the CPUID model, the kvm_run page and the completion pending
 * for the next KVM_RUN. The exit handlers (handle-*.ts) work on it. Internal to host/kvm.
 */
import { GP_VECTOR, KVM_GUESTDBG_SINGLESTEP } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import type { ChainedException } from '../x86/intercept.js';
import type { CompleteUserspaceIo } from './complete-userspace-io.js';
import { cr4GuestReservedBits, guestPvHas } from './cpuid.js';
import { type GuestCpuid } from './api/cpuid.js';
import type { VcpuExitReason } from './api/exits.js';
import { AndersenPins } from './andersen.js';
import type { ControlRegisterWrite } from './cr-write.js';
import { ModelKvmRun } from './kvm-run.js';
import type { InterceptedMsr } from './handle-msr.js';
import type { HypercallEnv } from './hypercalls.js';
import { LocalApic } from './lapic.js';
import { type MsrAccess, type MsrVcpu, VcpuMsrState } from './msrs/msr-vcpu.js';
import { RegIntercepts, type DescriptorTableRegister } from './reg-intercepts.js';
import type { VmArch } from './vm-arch.js';

/** vCPU counters (a subset of `struct kvm_vcpu_stat`). */
export interface VcpuStat {
  exits: number;
  hypercalls: number;
  halt_exits: number;
  io_exits: number;
  signal_exits: number;
}

export class VcpuArch implements MsrVcpu {
  readonly msrState = new VcpuMsrState();
  readonly lapic: LocalApic;
  readonly run: ModelKvmRun;
  /** The one `struct msr_data` every MSR access of this vCPU goes through. */
  readonly msrAccess: MsrAccess = { index: 0, data: 0n, hostInitiated: false };
  /** Scratch for CPUID results: [EAX, EBX, ECX, EDX]. */
  readonly cpuidOut = new Uint32Array(4);
  /** What the dynamic CPUID bits read, refreshed at each CPUID (kvm_update_cpuid_runtime()). */
  readonly cpuidRuntime = { vcpuId: 0, cr4: 0n, apicBase: 0n };
  /** What a hypercall may consult: the VM's Heki state and guest_pv_has(). */
  readonly hypercallEnv: HypercallEnv;
  readonly stat: VcpuStat = { exits: 0, hypercalls: 0, halt_exits: 0, io_exits: 0, signal_exits: 0 };
  /** vcpu->arch.complete_userspace_io: what the next KVM_RUN finishes first (complete-userspace-io.ts). */
  completeUserspaceIo: CompleteUserspaceIo | null = null;
  /** vcpu->arch.cui_linear_rip: the RIP a PIO completion expects to find. */
  pioRip = 0n;
  /** John Andersen's CR pins (andersen.ts), per vCPU as in his posting. */
  readonly andersenPins = new AndersenPins();
  /** pinbox's secure register intercepts of this vCPU (reg-intercepts.ts). */
  readonly regIntercepts = new RegIntercepts();
  /** The CR0/CR4 write that is waiting for user space's answer (cr-write.ts). */
  readonly crWrite: ControlRegisterWrite = { cr: 0, access: 0, value: 0n, substituted: false };
  /** The RDMSR/WRMSR that waits for the monitor's answer (handle-msr.ts). */
  readonly interceptedMsr: InterceptedMsr = { index: 0, write: false, value: 0n };
  /** The descriptor-table register whose load waits for the monitor's answer (handle-desc.ts). */
  tableLoad: DescriptorTableRegister = 'gdtr';
  /** KVM_CAP_ENFORCE_PV_FEATURE_CPUID */
  pvEnforce = false;
  /** vcpu->guest_debug: the KVM_GUESTDBG_* flags in force (guest-debug.ts), 0 when no debugger. */
  guestDebug = 0;
  /** vcpu->arch.singlestep_rip: where the debugger's single step was asked. */
  singlestepRip = 0n;
  /** An emulated instruction was skipped under the debugger's single step: the step is done. */
  singlestepPending = false;
  /** vcpu->arch.guest_debug_dr7: the debugger's DR7 while its hardware breakpoints are in force. */
  guestDebugDr7 = 0n;
  /** The exceptions that ended in the last triple fault (the core's report; no VMX field has it). */
  shutdownChain: readonly ChainedException[] | undefined = undefined;
  /** Set by the first KVM_RUN; CPUID is frozen from then on. */
  hasRun = false;
  private cpuidModel: GuestCpuid;
  /** vcpu->arch.cr4_guest_rsvd_bits, recomputed with the CPUID. */
  cr4ReservedBits: bigint;

  constructor(
    readonly id: number,
    readonly cpu: GuestCpu,
    readonly vm: VmArch,
  ) {
    this.cpuidModel = vm.guestCpuid;
    this.cr4ReservedBits = cr4GuestReservedBits(this.cpuidModel);
    this.lapic = new LocalApic(id, () => this.cpuidModel);
    this.run = new ModelKvmRun(vm.profile);
    this.cpuidRuntime.vcpuId = id;
    this.hypercallEnv = {
      heki: vm.heki,
      pvHas: (feature) => guestPvHas(this.cpuidModel, this.pvEnforce, feature),
      memory: { abi: vm.hekiMemory, protection: vm.memoryProtection },
    };
  }

  get cpuid(): GuestCpuid {
    return this.cpuidModel;
  }

  /** kvm_vcpu_after_set_cpuid(): the derived masks follow the new model. */
  setCpuid(c: GuestCpuid): void {
    this.cpuidModel = c;
    this.cr4ReservedBits = cr4GuestReservedBits(c);
  }

  /**
   * The exit to user space: kvm_run names `reason` (its member is the caller's to fill) and
   * `completion` runs first in the next KVM_RUN (none: the guest just resumes). Returns true,
   * as an exit handler does when the exit goes to user space.
   */
  exitToUserSpace(reason: VcpuExitReason, completion: CompleteUserspaceIo | null = null): true {
    this.run.setExit(reason);
    this.completeUserspaceIo = completion;
    return true;
  }

  /**
   * kvm_skip_emulated_instruction(): past the instruction KVM finished for the guest. Under the
   * debugger's single step, the step is over: kvm_vcpu_do_singlestep() exits to user space
   * (singlestepPending, guest-debug.ts). MODEL DECISION: the guest's own TF over an instruction
   * KVM emulates raises no #DB here (KVM would queue one with DR6.BS).
   */
  skipEmulatedInstruction(): void {
    this.cpu.skipInstruction();
    if ((this.guestDebug & KVM_GUESTDBG_SINGLESTEP) !== 0) this.singlestepPending = true;
  }

  /** kvm_inject_gp(vcpu, 0) */
  injectGp(): void {
    this.injectException(GP_VECTOR, 0);
  }

  injectException(vector: number, errorCode?: number, address?: bigint): void {
    const trace = this.vm.trace;
    if (trace.active) {
      trace.emit('kvm_inj_exception', { vcpu_id: this.id, exception: vector, has_error: errorCode !== undefined, error_code: errorCode ?? 0 });
    }
    this.cpu.injectException(vector, errorCode, address);
  }
}
