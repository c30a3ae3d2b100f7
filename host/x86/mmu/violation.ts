/**
 * Second-stage violations as guest faults: the walker and the access paths raise them with the
 * shared GUEST_FAULT token (fault.ts) under a vector no exception has, so that they unwind the
 * instruction exactly as a #PF would (nothing it did is kept, RIP stays on it); the run loop and
 * event delivery turn them into the `ept_violation` intercept instead of delivering anything
 * (VMX exit 48 "EPT violation").
 */
import type { CpuCore } from '../core.js';
import { GUEST_FAULT } from '../fault.js';
import type { Intercept } from '../intercept.js';
import {
  EPT_VIOLATION_ACC_INSTR, EPT_VIOLATION_ACC_WRITE, EPT_VIOLATION_GVA_IS_VALID,
} from './second-stage.js';

/** The faultVector of a second-stage violation: above every exception vector (0..31). */
export const EPT_VIOLATION_VECTOR = 256;

export function raiseEptViolation(c: CpuCore, gpa: number, gva: number, qualification: number): never {
  c.faultVector = EPT_VIOLATION_VECTOR;
  c.faultErrorCode = -1;
  c.violationGpa = gpa;
  c.violationGva = gva;
  c.violationQualification = qualification;
  throw GUEST_FAULT;
}

/** The intercept for the violation last raised; `vectoring` names an injected event it interrupted. */
export function eptViolationIntercept(
  c: CpuCore, vectoring?: { vector: number; errorCode: number; address: number },
): Intercept {
  const q = c.violationQualification;
  const access = (q & EPT_VIOLATION_ACC_WRITE) !== 0 ? 'write' : (q & EPT_VIOLATION_ACC_INSTR) !== 0 ? 'fetch' : 'read';
  return {
    kind: 'ept_violation',
    gpa: BigInt(c.violationGpa),
    gva: (q & EPT_VIOLATION_GVA_IS_VALID) !== 0 ? BigInt.asUintN(64, BigInt(c.violationGva)) : undefined,
    access,
    qualification: q,
    ...(vectoring !== undefined && {
      vectoring: {
        vector: vectoring.vector,
        errorCode: vectoring.errorCode >= 0 ? vectoring.errorCode : undefined,
        address: BigInt.asUintN(64, BigInt(vectoring.address)),
      },
    }),
  };
}
