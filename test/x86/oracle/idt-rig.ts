/**
 * The exception-delivery suites' rig: a booted core whose IDT gates, TSS stack pointers and
 * entry state each case sets, a one-instruction trigger per event, and a `hlt` handler per
 * vector at its own address — so the `hlt` intercept's RIP tells which vector was delivered,
 * and the frame is read from RSP. Nothing here decides what should happen; delivery-model.ts does.
 */
import type { Intercept, Sregs } from '../../../host/index.js';
import {
  BP_VECTOR, DE_VECTOR, GP_VECTOR, PF_VECTOR, SS_VECTOR, UD_VECTOR, X86_EFLAGS_AC, X86_EFLAGS_CF,
  X86_EFLAGS_FIXED, X86_EFLAGS_IF, X86_EFLAGS_ZF,
} from '../../../protocol/abi.js';
import {
  buildMachine, CODE, gate, KERNEL_CS, KERNEL_STACK_TOP, SCRATCH, setGate, TSS, USER_CODE, USER_CS, USER_DS,
  USER_STACK_TOP, type Machine,
} from '../harness/machine.js';

export const INTERRUPT_GATE = 0xe;
export const TRAP_GATE = 0xf;
/** Handlers: `hlt` at HANDLERS + 16 × vector (supervisor RWX memory). */
export const HANDLERS = CODE + 0x1000;
export const handlerOf = (vector: number): number => HANDLERS + 16 * vector;
/** IST stacks n = 1..7: tops at SCRATCH + n × 4 KiB (supervisor RW). */
export const istTop = (n: number): bigint => BigInt(SCRATCH + n * 0x1000);
/** A canonical address whose PML4 slot (224) the boot image leaves not present. */
export const UNMAPPED = 0x7000_0000_0000n;
export const NON_CANONICAL = 0x8000_0000_0000_0000n;
/** RFLAGS at the event: IF, AC and two arithmetic flags, so that what delivery keeps shows. */
export const ENTRY_RFLAGS = X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_AC | X86_EFLAGS_CF | X86_EFLAGS_ZF;

/** The events the suites raise, each one instruction with its operands in registers. */
export type EventName = '#DE' | '#BP' | '#UD' | '#GP' | '#SS' | '#PF' | 'INT 0x40';
export interface Trigger {
  vector: number;
  bytes: number[];
  /** From the class of event: a fault pushes the instruction, a trap or INT n the next one. */
  kind: 'fault' | 'trap' | 'software';
  /** Error code for the event itself, given the CPL. */
  errorCode?: (cpl: 0 | 3) => number;
  /** INT n, INT3 and INTO check the gate DPL. */
  software: boolean;
}
export const TRIGGERS: Record<EventName, Trigger> = {
  '#DE': { vector: DE_VECTOR, bytes: [0xf7, 0xf1], kind: 'fault', software: false }, // div ecx (ECX = 0)
  '#BP': { vector: BP_VECTOR, bytes: [0xcc], kind: 'trap', software: true }, // int3
  '#UD': { vector: UD_VECTOR, bytes: [0x0f, 0x0b], kind: 'fault', software: false }, // ud2
  // mov rax, [rbx] with RBX non-canonical
  '#GP': { vector: GP_VECTOR, bytes: [0x48, 0x8b, 0x03], kind: 'fault', errorCode: () => 0, software: false },
  // mov rax, [rbp+0] with RBP non-canonical: an SS-relative reference (SDM vol. 3A §6.15 #SS)
  '#SS': { vector: SS_VECTOR, bytes: [0x48, 0x8b, 0x45, 0x00], kind: 'fault', errorCode: () => 0, software: false },
  // mov rax, [rsi] with RSI unmapped: P = 0, U/S from the CPL
  '#PF': { vector: PF_VECTOR, bytes: [0x48, 0x8b, 0x06], kind: 'fault', errorCode: (cpl) => (cpl === 3 ? 4 : 0), software: false },
  'INT 0x40': { vector: 0x40, bytes: [0xcd, 0x40], kind: 'software', software: true },
};
export const EVENT_NAMES = Object.keys(TRIGGERS) as EventName[];

export interface GateSpec {
  type?: number;
  dpl?: number;
  ist?: number;
  present?: boolean;
  selector?: number;
  target?: bigint;
}

export class IdtRig {
  readonly m: Machine;
  private readonly kernelSregs: Sregs;

  constructor() {
    this.m = buildMachine();
    for (let v = 0; v < 256; v++) this.m.memory.write8(handlerOf(v), 0xf4);
    this.kernelSregs = this.m.cpu.getSregs();
  }

  setGate(vector: number, g: GateSpec = {}): void {
    setGate(this.m.memory, vector, gate(
      g.target ?? BigInt(handlerOf(vector)), g.selector ?? KERNEL_CS, g.type ?? INTERRUPT_GATE,
      g.dpl ?? 0, g.ist ?? 0, g.present ?? true,
    ));
  }

  /** TSS.RSP0 and TSS.IST1..7 (SDM vol. 3A fig. 8-11: RSP0 at 4, ISTn at 36 + 8(n−1)). */
  setTss(rsp0: bigint, ist: readonly bigint[]): void {
    this.m.memory.write64(TSS + 4, rsp0);
    ist.forEach((v, k) => this.m.memory.write64(TSS + 36 + 8 * k, v));
  }

  readTss(): { rsp0: bigint; ist: bigint[] } {
    return {
      rsp0: this.m.memory.read64(TSS + 4),
      ist: Array.from({ length: 7 }, (_, k) => this.m.memory.read64(TSS + 36 + 8 * k)),
    };
  }

  /** Enters CPL 0 or 3 (KVM_SET_SREGS-like) with the given RSP and RFLAGS. */
  enter(cpl: 0 | 3, rsp: bigint, rflags = ENTRY_RFLAGS): void {
    const s: Sregs = structuredClone(this.kernelSregs);
    if (cpl === 3) {
      s.cs = { ...s.cs, selector: USER_CS, dpl: 3 };
      for (const seg of ['ss', 'ds', 'es'] as const) s[seg] = { ...s[seg], selector: USER_DS, dpl: 3 };
    }
    this.m.cpu.setSregs(s);
    const cpu = this.m.cpu;
    cpu.writeGpr(4, rsp);
    cpu.setRflags(BigInt(rflags));
  }

  /** Where the trigger runs at this CPL. */
  triggerAddress(cpl: 0 | 3): number {
    return (cpl === 3 ? USER_CODE : CODE) + 0x200;
  }

  /** Runs one trigger (followed by CPUID, reached only if nothing is raised). */
  trigger(t: Trigger, cpl: 0 | 3): Intercept {
    const cpu = this.m.cpu;
    const at = this.triggerAddress(cpl);
    this.m.memory.writeBytes(at, Uint8Array.from([...t.bytes, 0x0f, 0xa2]));
    cpu.writeGpr(0, 1n); // RAX: dividend
    cpu.writeGpr(1, 0n); // RCX: divisor
    cpu.writeGpr(2, 0n); // RDX
    cpu.writeGpr(3, NON_CANONICAL); // RBX
    cpu.writeGpr(5, NON_CANONICAL); // RBP
    cpu.writeGpr(6, UNMAPPED); // RSI
    cpu.setRip(BigInt(at));
    return cpu.run(64);
  }

  /** The n-th quadword above RSP. */
  frame(count: number): bigint[] {
    const rsp = Number(this.m.cpu.readGpr(4));
    return Array.from({ length: count }, (_, k) => this.m.memory.read64(rsp + 8 * k));
  }
}

/** Default stacks: the boot image's kernel and user stacks, IST n at istTop(n). */
export const STACKS = {
  kernel: BigInt(KERNEL_STACK_TOP),
  user: BigInt(USER_STACK_TOP),
};
