/** A guest step's action, as written, to model.ts's GuestAction (after the schema). */
import { asmProblems } from './asm-check.js';
import { GENERAL_REGISTERS, type CrNumber, type GeneralRegister, type GuestAction, type RegisterValues } from './model.js';
import type { GuestText } from './document.js';
import { hexBytesLength, parseHexBytes, toBigInt, toNumber, type IntegerText } from './integers.js';
import type { ParseContext } from './parse-context.js';
import { hex } from '../../protocol/notation.js';

/** PROTOCOL.md §5: exec code is 1 to 65536 bytes. */
export const MAX_EXEC_CODE = 65536;
const CONTROL_REGISTERS: readonly number[] = [0, 2, 3, 4, 8];

/** MOV to/from CR encodes CR0–CR15, but only CR0, CR2, CR3, CR4 and CR8 exist (the others
 * are #UD: SDM vol. 2, "MOV—Move to/from Control Registers"), and the protocol runs only those. */
function crOf(text: GuestText, path: string, cx: ParseContext): CrNumber {
  const cr = text.cr!;
  if (!CONTROL_REGISTERS.includes(cr)) {
    const verb = text.op === 'readCr' ? 'read' : 'written';
    cx.issues.add(`${path}/cr`, `CR${cr} cannot be ${verb}: MOV CR names only CR0, CR2, CR3, CR4 and CR8 (the others are #UD)`);
  }
  return cr as CrNumber;
}

export function parseRegisterValues<K extends string>(
  regs: Record<string, IntegerText> | undefined,
  names: readonly K[],
): RegisterValues<K> {
  const out: RegisterValues<K> = {};
  for (const name of names) if (regs?.[name] !== undefined) out[name] = toBigInt(regs[name]);
  return out;
}

export function parseGuestAction(text: GuestText, path: string, cx: ParseContext): GuestAction | undefined {
  switch (text.op) {
    case 'rdmsr':
      return { op: 'rdmsr', index: toNumber(text.index!) };
    case 'wrmsr':
      return { op: 'wrmsr', index: toNumber(text.index!), value: toBigInt(text.value!) };
    case 'readCr':
      return { op: 'readCr', cr: crOf(text, path, cx) };
    case 'writeCr':
      return { op: 'writeCr', cr: crOf(text, path, cx), value: toBigInt(text.value!) };
    case 'writeCrMasked': {
      const set = text.set === undefined ? 0n : toBigInt(text.set);
      const clear = text.clear === undefined ? 0n : toBigInt(text.clear);
      if ((set & clear) !== 0n) cx.issues.add(path, `bits ${hex(set & clear)} are both set and cleared`);
      return { op: 'writeCrMasked', cr: crOf(text, path, cx), set, clear };
    }
    case 'lmsw': {
      const value = toBigInt(text.value!);
      if (value > 0xffffn) cx.issues.add(`${path}/value`, `LMSW takes a 16-bit operand; got ${hex(value)}`);
      return { op: 'lmsw', value: Number(value & 0xffffn) };
    }
    case 'clts':
      return { op: 'clts' };
    case 'hypercall':
      return {
        op: 'hypercall',
        nr: toBigInt(text.nr!),
        args: (text.args ?? []).map(toBigInt),
        insn: text.insn ?? 'vmcall',
      };
    case 'cpuid':
      return { op: 'cpuid', leaf: toNumber(text.leaf!), subleaf: text.subleaf === undefined ? 0 : toNumber(text.subleaf) };
    case 'exec': {
      const length = hexBytesLength(text.code!);
      if (length < 1 || length > MAX_EXEC_CODE) {
        cx.issues.add(`${path}/code`, `must be 1 to ${MAX_EXEC_CODE} bytes; got ${length}`);
        return undefined;
      }
      const code = parseHexBytes(text.code!);
      if (text.asm !== undefined) {
        for (const p of asmProblems(code, text.asm)) cx.issues.add(`${path}/asm${p.index === undefined ? '' : `/${p.index}`}`, p.reason);
      }
      return {
        op: 'exec',
        code,
        regs: parseRegisterValues<GeneralRegister>(text.regs, GENERAL_REGISTERS),
        budget: text.budget,
      };
    }
    default:
      return undefined; // the schema has reported the op
  }
}
