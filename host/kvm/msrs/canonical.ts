/** Canonical addresses (__canonical_address(), __is_canonical_address() in arch/x86/include/asm/page.h). */

/** Sign-extends `la` from bit `vaddrBits - 1`, as a u64. */
export function canonicalAddress(la: bigint, vaddrBits: number): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(vaddrBits, la));
}

export function isCanonicalAddress(la: bigint, vaddrBits: number): boolean {
  return canonicalAddress(la, vaddrBits) === la;
}
