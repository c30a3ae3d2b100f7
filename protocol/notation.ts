/**
 * How pinbox writes values for people — in messages, reports, logs and errors, on both sides —
 * the way the kernel's KVM tracepoints do: numbers in hex with `0x`, exceptions by their SDM
 * mnemonic with the error code in hex: `#GP(0)`, `#PF(0x1b)`, `#UD`, and `vector 0x20` for a
 * vector without a mnemonic. One format, so a fault reads the same in a guest's GuestFault, a
 * conformance report and `pinbox run`.
 */
import {
  AC_VECTOR, BP_VECTOR, BR_VECTOR, CP_VECTOR, DB_VECTOR, DE_VECTOR, DF_VECTOR, GP_VECTOR, MC_VECTOR, MF_VECTOR,
  NMI_VECTOR, NM_VECTOR, NP_VECTOR, OF_VECTOR, PF_VECTOR, SS_VECTOR, TS_VECTOR, UD_VECTOR, VE_VECTOR, XM_VECTOR,
} from './abi/x86-arch.js';

/** `0x1b`: a number as the kernel's traces print it. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

/** Intel SDM vol. 3A, Table 6-1 ("Protected-Mode Exceptions and Interrupts"). */
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
  [VE_VECTOR, '#VE'],
  [CP_VECTOR, '#CP'],
]);

/** The SDM mnemonic of each vector that has one: { 13: '#GP', … }. */
export function exceptionMnemonics(): Readonly<Record<number, string>> {
  return Object.fromEntries(MNEMONICS);
}

/** `#GP` for 13; a vector without a mnemonic is named by its number: `vector 0x20`. */
export function exceptionName(vector: number): string {
  return MNEMONICS.get(vector) ?? `vector ${hex(vector)}`;
}

/** `#GP(0)`, `#PF(0x1b)`, `#UD` (no error code). A zero error code is written `0`, as everyone writes #GP(0). */
export function describeFault(fault: { readonly vector: number; readonly errorCode?: number | undefined }): string {
  const name = exceptionName(fault.vector);
  if (fault.errorCode === undefined) return name;
  return `${name}(${fault.errorCode === 0 ? '0' : hex(fault.errorCode)})`;
}
