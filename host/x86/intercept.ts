/**
 * Intercepts: why the core stopped and handed control to the hypervisor. This is the seam
 * between host/x86 ("the hardware") and host/kvm ("the kernel"), playing the part of a VMX
 * exit reason plus its exit qualification (Intel SDM vol. 3C, ch. 27 and appendix C).
 *
 * For an instruction intercept the guest state is exactly as before the instruction: RIP
 * points at it and nothing it would do has happened. The hypervisor either emulates it and
 * calls `Cpu.skipInstruction()`, or injects a fault and leaves RIP where it is. Checks that
 * hardware makes before any VM exit (CPL for RDMSR/WRMSR/MOV CR/CLTS/LMSW/HLT, #UD for bad
 * encodings) have already been made by the core and never produce an intercept.
 */
export type Intercept =
  /** MOV to CR0/CR2/CR3/CR4/CR8 (VMX exit 28, access type 0). `value` is the source GPR's full value. */
  | { readonly kind: 'mov_to_cr'; readonly cr: 0 | 2 | 3 | 4 | 8; readonly gpr: number; readonly value: bigint }
  /** MOV from CRn (VMX exit 28, access type 1). The hypervisor writes the destination GPR. */
  | { readonly kind: 'mov_from_cr'; readonly cr: 0 | 2 | 3 | 4 | 8; readonly gpr: number }
  /** CLTS (VMX exit 28, access type 2). */
  | { readonly kind: 'clts' }
  /** LMSW (VMX exit 28, access type 3). `value` is the 16-bit source operand. */
  | { readonly kind: 'lmsw'; readonly value: number }
  /** RDMSR: index from ECX. */
  | { readonly kind: 'rdmsr'; readonly index: number }
  /** WRMSR: index from ECX, value from EDX:EAX. */
  | { readonly kind: 'wrmsr'; readonly index: number; readonly value: bigint }
  /** VMCALL (0F 01 C1) or VMMCALL (0F 01 D9), at any CPL. */
  | { readonly kind: 'hypercall'; readonly insn: 'vmcall' | 'vmmcall' }
  /** CPUID: leaf from EAX, subleaf from ECX. */
  | { readonly kind: 'cpuid'; readonly leaf: number; readonly subleaf: number }
  /** HLT at CPL0. */
  | { readonly kind: 'hlt' }
  /**
   * LGDT, LIDT, LLDT or LTR while the hypervisor has turned descriptor-table exiting on (VMX
   * exits 46 "access to GDTR or IDTR" and 47 "access to LDTR or TR", for loads only). The
   * operand has been read: `base` and `limit` for LGDT/LIDT (the base checked canonical),
   * `selector` for LLDT/LTR, whose descriptor is checked when the instruction executes
   * (`GuestCpu.executeIntercepted()`).
   */
  | { readonly kind: 'descriptor_table'; readonly insn: 'lgdt' | 'lidt' | 'lldt' | 'ltr'; readonly base: bigint; readonly limit: number; readonly selector: number }
  /** IN/OUT (not the string forms). For OUT, `value` holds AL/AX/EAX as the size says. */
  | { readonly kind: 'io'; readonly port: number; readonly size: 1 | 2 | 4; readonly in: boolean; readonly value: number }
  /**
   * An exception whose vector is set in the exception bitmap, stopped before delivery.
   * `address` is the faulting linear address for #PF (CR2 is not yet written, as with a VMX
   * exit qualification).
   */
  | {
    readonly kind: 'exception'; readonly vector: number; readonly errorCode: number | undefined; readonly address?: bigint;
    /** #DB: the conditions that raised it, as DR6 bits B0-B3, BD, BS (VMX's exit qualification for #DB). */
    readonly dr6?: number;
  }
  /**
   * A fault while delivering #DF: the processor shuts down (VMX exit 2). `chain` is pinbox's
   * addition (a VMX exit has no such field): the exceptions that led to it and their IDT gates.
   */
  | { readonly kind: 'triple_fault'; readonly chain: readonly ChainedException[] }
  /**
   * A guest access the second stage refused (VMX exit 48, EPT violation; mmu/second-stage.ts):
   * the guest-physical address, the guest linear address when the qualification's bit 7 says
   * there is one, the kind of access and the exit qualification. The instruction has done
   * nothing and RIP is on it. `vectoring` is set when the access was part of delivering an
   * event the hypervisor injected (IDT-vectoring information): that event was not delivered.
   */
  | {
    readonly kind: 'ept_violation'; readonly gpa: bigint; readonly gva: bigint | undefined;
    readonly access: 'read' | 'write' | 'fetch'; readonly qualification: number;
    readonly vectoring?: { readonly vector: number; readonly errorCode: number | undefined; readonly address: bigint };
  }
  /**
   * The instruction budget given to `run()` is spent (instructions retired and faults delivered),
   * or the core found an exception loop (`Cpu.exceptionLoop`); the guest can be resumed.
   */
  | { readonly kind: 'budget' }
  /**
   * The state the host loaded cannot be run by this core: anything but 64-bit long mode with
   * paging (CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CS.L) — VMX exit 33, "VM-entry failure due to
   * invalid guest state". `detail` names the offending field.
   */
  | { readonly kind: 'invalid_guest_state'; readonly detail: string };

export type InterceptKind = Intercept['kind'];

/**
 * One exception of the sequence that ended in a triple fault: the first, then each raised while
 * delivering the one before (SDM vol. 3A §6.15, interrupt 8), with the IDT gate the delivery
 * read for it.
 */
export interface ChainedException {
  readonly vector: number;
  /** The error code it delivers, if it has one. */
  readonly errorCode?: number;
  /** RIP when it was raised (the faulting instruction for a fault). */
  readonly rip: bigint;
  /** #PF: the faulting linear address (what CR2 was loaded with). */
  readonly address?: bigint;
  /** Its IDT entry, as IDTR located it when the processor shut down. */
  readonly gate: IdtGateView;
}

/**
 * An IDT entry as a debugger shows it: the 16 bytes and their fields, or why there are none
 * (beyond IDTR.limit, or on a page the walk cannot reach).
 */
export type IdtGateView =
  | {
    readonly kind: 'gate'; readonly address: bigint; readonly low: bigint; readonly high: bigint;
    readonly offset: bigint; readonly selector: number; readonly type: number; readonly dpl: number;
    readonly present: boolean; readonly ist: number;
  }
  | { readonly kind: 'beyond-limit'; readonly address: bigint; readonly limit: number }
  | { readonly kind: 'unreadable'; readonly address: bigint; readonly pageFault: number };
