/**
 * The reference model of 64-bit exception and interrupt delivery, written from the SDM (vol. 3A
 * ch. 6; vol. 2A INT n/INTO/INT3 pseudo-code), never from host/x86's delivery code:
 *   - §6.12.1.1 / INT n: gate DPL is checked only for software interrupts (INT n, INT3, INTO);
 *   - §6.13: error codes that name a selector or an IDT entry (EXT, IDT, TI bits);
 *   - §6.14.2–6.14.5: the 64-bit frame (SS, RSP, RFLAGS, CS, RIP, error code), pushed on a stack
 *     aligned to 16 bytes; TSS.RSP0 on a change of CPL, TSS.ISTn whenever the gate names one;
 *     the new SS is NULL on a change of CPL;
 *   - vol. 3B §17.3.1.1 (RF): a fault pushes RF = 1, other events push RF as it was;
 *   - delivery clears TF, NT, RF (and VM); an interrupt gate also clears IF, a trap gate does not;
 *   - tables 6-4 and 6-5: exception classes and when a second exception makes a #DF; a fault
 *     while delivering #DF is a shutdown (a triple fault).
 */
import {
  DE_VECTOR, DF_VECTOR, GP_VECTOR, NP_VECTOR, PF_VECTOR, SS_VECTOR, TS_VECTOR,
  X86_EFLAGS_IF, X86_EFLAGS_NT, X86_EFLAGS_RF, X86_EFLAGS_TF, X86_EFLAGS_VM,
} from '../../../protocol/abi.js';

/** Table 6-4. */
export type ExceptionClass = 'benign' | 'contributory' | 'page-fault' | 'double-fault';

export function exceptionClass(vector: number): ExceptionClass {
  if (vector === PF_VECTOR) return 'page-fault';
  if (vector === DF_VECTOR) return 'double-fault';
  if ([DE_VECTOR, TS_VECTOR, NP_VECTOR, SS_VECTOR, GP_VECTOR].includes(vector)) return 'contributory';
  return 'benign';
}

/**
 * Table 6-5 for a second exception detected while delivering the first. 'serial': the second is
 * delivered and the first is not (it recurs if the instruction restarts after the second's
 * handler returns); 'double-fault': #DF is delivered instead; a fault while delivering #DF is a
 * shutdown (§6.15, interrupt 8).
 */
export function secondException(first: number, second: number): 'serial' | 'double-fault' | 'triple-fault' {
  const a = exceptionClass(first);
  const b = exceptionClass(second);
  if (a === 'double-fault') return 'triple-fault';
  if (a === 'contributory' && b === 'contributory') return 'double-fault';
  if (a === 'page-fault' && (b === 'contributory' || b === 'page-fault')) return 'double-fault';
  return 'serial';
}

/** §6.13: an error code naming an IDT entry. EXT is 0 only for INT n, INT3 and INTO. */
export function idtErrorCode(vector: number, ext: boolean): number {
  return vector * 8 + 2 + (ext ? 1 : 0);
}

/** §6.13: an error code naming a GDT selector (TI = 0). */
export function selectorErrorCode(selector: number, ext: boolean): number {
  return (selector & ~3) + (ext ? 1 : 0);
}

export type EventKind = 'fault' | 'trap' | 'software';

export interface DeliveryInput {
  kind: EventKind;
  errorCode?: number;
  /** 0xE (interrupt gate) or 0xF (trap gate). */
  gateType: number;
  ist: number;
  cpl: 0 | 3;
  /** The interrupted context's RIP to push: the instruction for a fault, the next one otherwise. */
  returnRip: bigint;
  rsp: bigint;
  rflags: number;
  cs: number;
  ss: number;
  tss: { rsp0: bigint; ist: readonly bigint[] };
  /** Selector of the gate's (DPL 0, 64-bit) code segment. */
  handlerCs: number;
}

export interface DeliveryOutput {
  /** RSP in the handler: the frame's lowest quadword. */
  rsp: bigint;
  /** The frame from RSP upwards: [error code,] RIP, CS, RFLAGS, RSP, SS. */
  frame: bigint[];
  rflags: number;
  cs: number;
  ss: number;
  cpl: 0;
}

const INTERRUPT_GATE = 0xe;

export function expectedDelivery(d: DeliveryInput): DeliveryOutput {
  // §6.14.5: IST whenever the gate names one; §6.14.4: otherwise RSP0 on a CPL change.
  const base = d.ist !== 0 ? d.tss.ist[d.ist - 1]! : d.cpl !== 0 ? d.tss.rsp0 : d.rsp;
  const aligned = base & ~0xfn;
  const pushedFlags = d.kind === 'fault' ? d.rflags | X86_EFLAGS_RF : d.rflags;
  const frame = [BigInt(d.ss), d.rsp, BigInt(pushedFlags), BigInt(d.cs), d.returnRip];
  if (d.errorCode !== undefined) frame.push(BigInt(d.errorCode));
  frame.reverse();
  let rflags = d.rflags & ~(X86_EFLAGS_TF | X86_EFLAGS_NT | X86_EFLAGS_RF | X86_EFLAGS_VM);
  if (d.gateType === INTERRUPT_GATE) rflags &= ~X86_EFLAGS_IF;
  return {
    rsp: aligned - 8n * BigInt(frame.length),
    frame,
    rflags,
    cs: d.handlerCs,
    // §6.14.4: on a CPL change the new SS is NULL (with RPL = new CPL = 0); otherwise unchanged.
    ss: d.cpl !== 0 ? 0 : d.ss,
    cpl: 0,
  };
}

