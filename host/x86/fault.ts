/**
 * Guest faults as cheap values (docs/x86-model.md §7): a handler that detects an exception
 * records it in the CPU and throws one shared, frozen token; the run loop catches it once and
 * delivers the exception. Throwing a preallocated plain object costs about 180 ns against about
 * 2 µs for a fresh `Error`, and nothing is allocated per fault.
 *
 * Anything else that reaches the run loop's catch is a bug in the core and is rethrown.
 */
import { DE_VECTOR, GP_VECTOR, NP_VECTOR, PF_VECTOR, SS_VECTOR, TS_VECTOR, UD_VECTOR } from '../../protocol/abi.js';

/** The token thrown for every guest fault; its details live in `FaultState`. */
export const GUEST_FAULT: { readonly guestFault: true } = Object.freeze({ guestFault: true as const });

/** Where a thrown fault's details are kept (a CpuCore implements this). */
export interface FaultState {
  faultVector: number;
  /** The error code, or -1 when the exception has none. */
  faultErrorCode: number;
  /** The faulting linear address, for #PF (becomes CR2 at delivery). */
  faultAddress: number;
}

/** No error code pushed (SDM vol. 3A table 6-1: #DE, #DB, #BP, #OF, #BR, #UD, #NM, #MF, #XM, ...). */
export const NO_ERROR_CODE = -1;

export function raise(s: FaultState, vector: number, errorCode: number = NO_ERROR_CODE): never {
  s.faultVector = vector;
  s.faultErrorCode = errorCode;
  throw GUEST_FAULT;
}

export function raiseUD(s: FaultState): never {
  return raise(s, UD_VECTOR);
}

export function raiseGP(s: FaultState, errorCode = 0): never {
  return raise(s, GP_VECTOR, errorCode);
}

export function raiseSS(s: FaultState, errorCode = 0): never {
  return raise(s, SS_VECTOR, errorCode);
}

export function raiseNP(s: FaultState, errorCode: number): never {
  return raise(s, NP_VECTOR, errorCode);
}

export function raiseTS(s: FaultState, errorCode: number): never {
  return raise(s, TS_VECTOR, errorCode);
}

export function raiseDE(s: FaultState): never {
  return raise(s, DE_VECTOR);
}

export function raisePF(s: FaultState, errorCode: number, address: number): never {
  s.faultAddress = address;
  return raise(s, PF_VECTOR, errorCode);
}

/**
 * Which exceptions push an error code (SDM vol. 3A §6.13 and table 6-1): #DF, #TS, #NP, #SS, #GP,
 * #PF, #AC, #CP. Used for injected exceptions given without one.
 */
export function pushesErrorCode(vector: number): boolean {
  return vector === 8 || vector === 10 || vector === 11 || vector === 12 || vector === 13 ||
    vector === 14 || vector === 17 || vector === 21;
}
