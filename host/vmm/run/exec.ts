/**
 * `exec`: raw 64-bit code of one request, copied into the vCPU's exec slot (CPL0: the kernel
 * exec area, supervisor RWX; CPL3: the user region) and followed by the epilogue — HLT at CPL0,
 * the done gate `int3` at CPL3 — so that code that runs off its end stops there. The fault
 * record is armed with fix-up 0: a fault halts in the stub with the exception frame kept, from
 * which the registers are given as the faulting instruction left them.
 *
 * Registers the request does not give start at 0 (RSP: the top of the vCPU's kernel or user
 * stack; RFLAGS: 0x2), so that an exec's outcome depends on its code and inputs only.
 */
import type { ExecStop } from '../../../protocol/messages/index.js';
import { copyRegs, KVM_REGS_FIELDS, type Regs } from '../../kvm/api/regs.js';
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import type { ChainedException } from '../../kvm/api/model.js';
import type { BootLayout } from '../boot/index.js';
import { DONE_VECTOR, KERNEL_EPILOGUE, pushesErrorCode, USER_EPILOGUE } from '../boot/stubs.js';
import { limitError } from '../errors.js';
import type { FaultRecord } from './fault-record.js';
import type { GuestRequest } from './operations.js';
import type { PrivilegeEntry } from './privilege.js';

export type ExecRequest = Extract<GuestRequest, { op: 'exec' }>;
export type { ExecStop };

export interface ExecOutcome {
  /** 'exit': the code wrote to the exit port (only a VM with isa-debug-exit: `pinbox run`). */
  stop: ExecStop | 'exit';
  regs: Regs;
  fault?: { vector: number; errorCode?: number };
  /** stop 'shutdown', on the model: the exceptions that led to the triple fault, with their IDT gates. */
  chain?: readonly ChainedException[];
  /** For 'exit': the value written to the port. */
  exitValue?: number;
}

/** Offsets in the frame the common stub path leaves on the IST stack (boot/stubs.ts). */
const FAULT_FRAME = { rax: 0, rip: 24, rflags: 40, rsp: 48 } as const;
/**
 * RFLAGS.RF: the processor sets it in the RFLAGS image it saves for a fault (SDM vol. 3A, the
 * resume flag under "Instruction-Breakpoint Exception Condition") so that IRET does not
 * re-trigger an instruction breakpoint; the faulting instruction itself ran with it clear.
 */
const RFLAGS_RF = 1n << 16n;
/** RFLAGS exec code starts with: only the reserved bit 1. */
export const EXEC_RFLAGS = 0x2n;
/** The IRET frame the done gate leaves: RIP, CS, RFLAGS, RSP, SS. */
const GATE_FRAME = { rip: 0, rflags: 16, rsp: 24 } as const;

/** Code already in guest memory (a loaded image), run in place at CPL0. */
export interface InPlaceCode {
  readonly entry: bigint;
  readonly budget?: number;
  /** Registers to enter with (others 0; RSP: the top of the kernel stack). */
  readonly regs?: ExecRequest['regs'];
  /**
   * A slice of a longer run (`pinbox run --vcpus`): the first slice enters at `entry`, each later
   * one (`resume`) goes on where the last stopped; a spent budget ends the slice, not the run,
   * so the vCPU is left as it is for the next.
   */
  readonly slice?: 'first' | 'resume';
}

export class ExecPlacement {
  readonly cpl3: boolean;
  /** Address of the first byte of the code, and of the epilogue right after it (none in place). */
  readonly start: bigint;
  readonly end: bigint | undefined;
  private readonly regs: ExecRequest['regs'];

  private constructor(cpl3: boolean, start: bigint, end: bigint | undefined, regs: ExecRequest['regs']) {
    this.cpl3 = cpl3;
    this.start = start;
    this.end = end;
    this.regs = regs;
  }

  /** Copies an exec request's code into the vCPU's exec slot, followed by the epilogue. */
  static copied(memory: GuestMemory, layout: BootLayout, vcpu: number, request: ExecRequest): ExecPlacement {
    const cpl3 = request.cpl === 3;
    const slot = cpl3 ? layout.userExecSlot(vcpu) : layout.kernelExecSlot(vcpu);
    const epilogue = cpl3 ? USER_EPILOGUE : KERNEL_EPILOGUE;
    const code = request.code;
    if (code.length + epilogue.length > slot.size) {
      // The rule PROTOCOL.md §5 states: the exec area shared out among the vCPUs in whole pages,
      // less the epilogue that ends the code.
      const area = cpl3 ? 'the user exec area 0x201000-0x3bffff' : 'the 1 MiB kernel exec area 0x100000-0x1fffff';
      const end = cpl3 ? 'the 1-byte INT3 (the done gate)' : 'the 1-byte HLT';
      throw limitError(
        `exec code of ${code.length} bytes does not fit vCPU ${vcpu}'s exec slot: at most ${slot.size - epilogue.length} bytes ` +
          `at CPL${cpl3 ? 3 : 0} on a VM of ${layout.vcpus} vCPUs (${area} shared out among the vCPUs in whole 4 KiB pages, ` +
          `less ${end} that ends the code; PROTOCOL.md §5)`,
      );
    }
    const bytes = new Uint8Array(code.length + epilogue.length);
    bytes.set(code);
    bytes.set(epilogue, code.length);
    memory.writeBytes(slot.base, bytes);
    return new ExecPlacement(cpl3, BigInt(slot.base), BigInt(slot.base + code.length), request.regs);
  }

  /** Code already in memory, entered at `entry` at CPL0; it has no end of its own. */
  static inPlace(code: InPlaceCode): ExecPlacement {
    return new ExecPlacement(false, code.entry, undefined, code.regs);
  }

  /** The request's registers (others 0), and RIP/RSP to enter the code at its CPL. */
  load(regs: Regs, entry: PrivilegeEntry): void {
    const given = this.regs ?? {};
    for (const name of KVM_REGS_FIELDS) if (name !== 'rip' && name !== 'rflags') regs[name] = given[name] ?? 0n;
    const e = this.cpl3 ? entry.user(this.start, given.rsp) : entry.kernel(this.start, given.rsp);
    regs.rip = e.rip;
    regs.rsp = e.rsp;
    regs.rflags = EXEC_RFLAGS;
  }
}

function read64(memory: GuestMemory, address: bigint): bigint | undefined {
  const a = Number(address);
  return memory.contains(a, 8) ? memory.read64(a) : undefined;
}

/** Why exec code stopped at a HLT exit, and the registers as the code left them. */
export function execStop(placed: ExecPlacement, regs: Regs, faults: FaultRecord, memory: GuestMemory, layout: BootLayout): ExecOutcome {
  const out: Regs = copyRegs(regs);
  const text = layout.text;
  const frame = (offset: number): bigint | undefined => read64(memory, regs.rsp + BigInt(offset));
  if (faults.count > 0) {
    const vector = faults.vector;
    const fault = pushesErrorCode(vector) ? { vector, errorCode: faults.errorCode } : { vector };
    if (regs.rip === BigInt(text.faultHalt + 1)) {
      out.rax = frame(FAULT_FRAME.rax) ?? out.rax;
      out.rip = frame(FAULT_FRAME.rip) ?? out.rip;
      out.rflags = (frame(FAULT_FRAME.rflags) ?? out.rflags) & ~RFLAGS_RF;
      out.rsp = frame(FAULT_FRAME.rsp) ?? out.rsp;
    }
    return { stop: 'fault', regs: out, fault };
  }
  if (regs.rip === BigInt(text.doneHalt + 1)) {
    // Through gate 3: the interrupted context is in the gate's IRET frame. The done gate after
    // CPL3 code is the end; any other int3 is the code's own breakpoint, reported as the #BP
    // trap it is (RIP past the int3), as a fault the code does not handle.
    out.rip = frame(GATE_FRAME.rip) ?? out.rip;
    out.rflags = frame(GATE_FRAME.rflags) ?? out.rflags;
    out.rsp = frame(GATE_FRAME.rsp) ?? out.rsp;
    if (placed.cpl3 && placed.end !== undefined && out.rip === placed.end + BigInt(USER_EPILOGUE.length)) {
      out.rip = placed.end;
      return { stop: 'end', regs: out };
    }
    return { stop: 'fault', regs: out, fault: { vector: DONE_VECTOR } };
  }
  if (!placed.cpl3 && placed.end !== undefined && regs.rip === placed.end + 1n) {
    out.rip = placed.end;
    return { stop: 'end', regs: out };
  }
  return { stop: 'hlt', regs: out };
}
