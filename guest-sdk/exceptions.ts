/**
 * Exception vectors by their SDM mnemonics, and a fault written the way a kernel log or the SDM
 * writes it: `#GP(0)`, `#PF(0x3)`, `#UD`.
 */
import {
  AC_VECTOR, BP_VECTOR, BR_VECTOR, DB_VECTOR, DE_VECTOR, DF_VECTOR, GP_VECTOR, MC_VECTOR, MF_VECTOR, NMI_VECTOR,
  NM_VECTOR, NP_VECTOR, OF_VECTOR, PF_VECTOR, SS_VECTOR, TS_VECTOR, UD_VECTOR, XM_VECTOR,
  type Fault,
} from '../protocol/index.js';

/**
 * Intel SDM vol. 3A §6.3.1, Table 6-1 ("Protected-Mode Exceptions and Interrupts"). #VE (20)
 * and #CP (21) have no constant in protocol/abi.ts yet, so they are keyed by their SDM numbers.
 */
const MNEMONICS: ReadonlyMap<number, string> = new Map([
  [DE_VECTOR, '#DE'],
  [DB_VECTOR, '#DB'],
  [NMI_VECTOR, 'NMI'],
  [BP_VECTOR, '#BP'],
  [OF_VECTOR, '#OF'],
  [BR_VECTOR, '#BR'],
  [UD_VECTOR, '#UD'],
  [NM_VECTOR, '#NM'],
  [DF_VECTOR, '#DF'],
  [TS_VECTOR, '#TS'],
  [NP_VECTOR, '#NP'],
  [SS_VECTOR, '#SS'],
  [GP_VECTOR, '#GP'],
  [PF_VECTOR, '#PF'],
  [MF_VECTOR, '#MF'],
  [AC_VECTOR, '#AC'],
  [MC_VECTOR, '#MC'],
  [XM_VECTOR, '#XM'],
  [20, '#VE'],
  [21, '#CP'],
]);

/** `#GP` for 13; vectors without a mnemonic are named by number: `vector 32`. */
export function exceptionName(vector: number): string {
  return MNEMONICS.get(vector) ?? `vector ${vector}`;
}

/** `#GP(0)`, `#PF(0x3)`, `#UD` (no error code). Error codes above 9 are written in hex. */
export function describeFault(fault: Fault): string {
  const name = exceptionName(fault.vector);
  if (fault.errorCode === undefined) return name;
  return `${name}(${fault.errorCode < 10 ? fault.errorCode : `0x${fault.errorCode.toString(16)}`})`;
}
