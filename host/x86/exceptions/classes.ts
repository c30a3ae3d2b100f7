/**
 * Exception classes for double-fault escalation (SDM vol. 3A §6.15, table 6-4/6-5 "Conditions
 * for generating a double fault") and fault/trap classes (table 6-1), as KVM's
 * exception_class()/exception_type() in arch/x86/kvm/x86.c encode them.
 */
export const CLASS_BENIGN = 0;
export const CLASS_CONTRIBUTORY = 1;
export const CLASS_PAGE_FAULT = 2;

export function exceptionClass(vector: number): number {
  switch (vector) {
    case 14: return CLASS_PAGE_FAULT;
    case 0: case 10: case 11: case 12: case 13: return CLASS_CONTRIBUTORY;
    default: return CLASS_BENIGN;
  }
}

/**
 * Whether exception B while delivering exception A is a double fault (otherwise B is
 * delivered instead, serially): contributory after contributory; contributory or #PF after #PF.
 */
export function isDoubleFault(first: number, second: number): boolean {
  const a = exceptionClass(first), b = exceptionClass(second);
  return (a === CLASS_CONTRIBUTORY && b === CLASS_CONTRIBUTORY) ||
    (a === CLASS_PAGE_FAULT && (b === CLASS_CONTRIBUTORY || b === CLASS_PAGE_FAULT));
}

/**
 * Whether an exception is fault-class (delivered with the faulting instruction's RIP and
 * RF=1 in the saved RFLAGS image, as kvm_inject_exception() does for EXCPT_FAULT): all but
 * #DB, #BP, #OF (traps) and #DF, #MC (aborts).
 */
export function isFaultClass(vector: number): boolean {
  return !(vector === 1 || vector === 3 || vector === 4 || vector === 8 || vector === 18);
}
