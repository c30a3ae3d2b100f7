import type { ExceptionLoop } from './exceptions/delivery-loop.js';
import type { Intercept } from './intercept.js';
import type { PhysicalMemory } from './memory.js';
import type { GeneralRegisters, SystemRegisters } from './state.js';

/** Control registers that MOV to/from CR can name in 64-bit mode. */
export type ControlRegister = 0 | 2 | 3 | 4 | 8;

/** An access for `translate`, as the MMU classifies it. */
export type AccessKind = 'read' | 'write' | 'fetch';

/**
 * What a hypervisor can do with a CPU: the part of the core that host/kvm is allowed to use,
 * in the role the VMCS plays for VMX. host/x86's `Cpu` implements it; nothing in host/kvm
 * reaches past it into the core's internals.
 *
 * Values are bigint at this edge. GPR indices follow the encoding (0 = RAX, 1 = RCX, 2 = RDX,
 * 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8..15 = R8..R15).
 */
export interface GuestCpu {
  /** The guest-physical memory this CPU runs on (shared by the vCPUs of one VM). */
  readonly memory: PhysicalMemory;

  /**
   * VMX exception bitmap: when bit v is set, exception v is not delivered but stops `run()`
   * with an `exception` intercept, before any guest state changes for it.
   */
  exceptionBitmap: number;

  /**
   * VMX's "descriptor-table exiting" control, for loads: while set, LGDT, LIDT, LLDT and LTR
   * stop `run()` with a `descriptor_table` intercept instead of executing.
   */
  descriptorTableExiting: boolean;

  /**
   * Runs guest instructions until an intercept, retiring at most `budget` instructions
   * (then the `budget` intercept). A pending injected exception is delivered first. Each fault
   * the guest's own instructions raise and the core delivers costs the budget a unit too, and an
   * exception loop (a handler that faults again at once, for ever) ends the run early with the
   * `budget` intercept (exceptions/delivery-loop.ts).
   */
  run(budget: number): Intercept;

  /** The general registers, RIP and RFLAGS (what KVM_GET_REGS / KVM_SET_REGS read and load). */
  getRegs(): GeneralRegisters;
  setRegs(regs: GeneralRegisters): void;
  /**
   * The system registers (what KVM_GET_SREGS / KVM_SET_SREGS read and load): loads segment
   * caches, descriptor tables, CRs and EFER as given, without architectural checks (the host is
   * trusted), flushes the TLB, and takes the CPL from SS.DPL as VMX does (vmx_get_cpl()).
   */
  getSregs(): SystemRegisters;
  setSregs(sregs: SystemRegisters): void;

  readGpr(index: number): bigint;
  writeGpr(index: number, value: bigint): void;
  /** Low 32 bits of a GPR, as an unsigned number. */
  readGpr32(index: number): number;
  /** A 32-bit register write: sets the low half and zeroes the upper half, as `mov r32` does. */
  writeGpr32(index: number, value: number): void;

  getRip(): bigint;
  setRip(rip: bigint): void;
  getRflags(): bigint;
  setRflags(rflags: bigint): void;
  /** Current privilege level (0..3). */
  readonly cpl: number;

  readCr(cr: ControlRegister): bigint;
  /**
   * Loads a control register with no checks, as a hypervisor does after it has validated the
   * value (kvm_set_cr0() ending in vmx_set_cr0()). Applies the architectural side effects:
   * TLB flushes on CR3 writes and on changes of CR0.WP/PG, CR4.PGE/PAE/PSE/SMEP/SMAP/PCIDE.
   */
  commitCr(cr: ControlRegister, value: bigint): void;

  /**
   * MSRs whose state lives in the core because instructions use it: EFER, STAR, LSTAR, CSTAR,
   * SFMASK, FS_BASE, GS_BASE, KERNEL_GS_BASE, SYSENTER_CS/ESP/EIP, TSC, TSC_AUX. Returns
   * undefined for any other index.
   */
  readMsr(index: number): bigint | undefined;
  /** Loads a core-owned MSR with no checks; false if the index is not core-owned. */
  commitMsr(index: number, value: bigint): boolean;

  /**
   * Queues an exception for delivery through the IDT before the next instruction (VM-entry
   * event injection). `address` is written to CR2 for a #PF.
   */
  injectException(vector: number, errorCode?: number, address?: bigint): void;

  /** Retires the intercepted instruction without executing it: RIP += its length. */
  skipInstruction(): void;

  /**
   * Executes the instruction a `descriptor_table` intercept stopped at, as the processor would
   * have without the intercept, and retires it — what KVM's emulator does for an exit it
   * handled (handle_desc() → kvm_emulate_instruction()). A fault it raises is queued for
   * delivery instead, RIP left on the instruction.
   */
  executeIntercepted(): void;

  /**
   * Puts the hypervisor's instruction breakpoints in force instead of the guest's DR0-DR3/DR7
   * (KVM_GUESTDBG_USE_HW_BP loads vcpu->arch.eff_db and guest_debug_dr7 into the hardware), or,
   * with null, the guest's again. The guest's MOV DR keeps reading and writing its own values.
   */
  setHostBreakpoints(breakpoints: { readonly dr: readonly bigint[]; readonly dr7: bigint } | null): void;

  /** DR0-DR3, DR6 and DR7 as the guest's MOV DR sees them (what KVM_GET_DEBUGREGS reports). */
  getDebugRegs(): { db: bigint[]; dr6: bigint; dr7: bigint };

  /**
   * Walks the guest page tables for a linear address as an access of the given kind at the
   * given CPL would (default: the current CPL), like kvm_mmu_gva_to_gpa(). Sets no accessed or
   * dirty bits and fills no TLB entry.
   */
  translate(gva: bigint, access: AccessKind, cpl?: number): { gpa: number } | { vector: 14; errorCode: number };

  // -------------------------------------------------------------------------------------------
  // What KVM reads on every exit, without building SystemRegisters objects
  // -------------------------------------------------------------------------------------------

  /**
   * Instructions retired since the CPU was created. An intercepted instruction is not retired
   * until the hypervisor skips it; a faulting one never is.
   */
  readonly instructionsRetired: number;

  /**
   * Faults raised by guest instructions and delivered through the IDT since the CPU was created.
   * Each costs `run()`'s budget a unit, as a retired instruction does: a hypervisor that spreads
   * a budget over several runs counts both.
   */
  readonly eventsDelivered: number;

  /**
   * The exception loop that ended the last `run()` early with the `budget` intercept
   * (exceptions/delivery-loop.ts), or null.
   */
  readonly exceptionLoop: ExceptionLoop | null;

  /** is_64_bit_mode(): EFER.LMA and CS.L, read from the live state without copying it. */
  is64BitMode(): boolean;

  /**
   * Drops an exception queued by `injectException` and not yet delivered, as
   * kvm_clear_exception_queue() does on vCPU reset/INIT. Does nothing when none is queued.
   */
  clearExceptionQueue(): void;

  /**
   * The exception `injectException` queued and not yet delivered (KVM_GET_VCPU_EVENTS reads it):
   * its vector, its error code if it has one, and the CR2 a #PF will load. null when none is queued.
   */
  readonly queuedException: { readonly vector: number; readonly errorCode?: number; readonly cr2?: bigint } | null;
}
