/**
 * The Hyper-V TLFS's secure register intercepts, which pinbox's register intercepts follow
 * (docs/register-intercepts.md):
 *   [tlfs-vsm]  Hyper-V TLFS, "Virtual Secure Mode", §"Secure Register Intercepts"
 *               (MicrosoftDocs/Virtualization-Documentation, virtualization/hyper-v-on-windows/tlfs/vsm.md):
 *               HV_REGISTER_CR_INTERCEPT_CONTROL and its mask registers
 *   [hv-regs]   the register names' numbers as Linux's Hyper-V headers and LVBS use them
 *               (HV_X64_REGISTER_CR_INTERCEPT_CONTROL 0x000E0000 ...)
 * A higher VTL sets the control register with HvCallSetVpRegisters on each virtual processor;
 * pinbox's monitor does it with PINBOX_SET_REG_INTERCEPTS (pinbox-ext.ts).
 */

// ---------------------------------------------------------------------------
// HV_REGISTER_CR_INTERCEPT_CONTROL, bit by bit from bit 0 [tlfs-vsm]
// ---------------------------------------------------------------------------

/** The bits in TLFS order; the index of a name is its bit number. */
export const HV_CR_INTERCEPT_BIT_NAMES = [
  'Cr0Write', 'Cr4Write', 'XCr0Write', 'IA32MiscEnableRead', 'IA32MiscEnableWrite',
  'MsrLstarRead', 'MsrLstarWrite', 'MsrStarRead', 'MsrStarWrite', 'MsrCstarRead', 'MsrCstarWrite',
  'ApicBaseMsrRead', 'ApicBaseMsrWrite', 'MsrEferRead', 'MsrEferWrite',
  'GdtrWrite', 'IdtrWrite', 'LdtrWrite', 'TrWrite',
  'MsrSysenterCsWrite', 'MsrSysenterEipWrite', 'MsrSysenterEspWrite', 'MsrSfmaskWrite', 'MsrTscAuxWrite',
  'MsrSgxLaunchControlWrite',
] as const;
export type HvCrInterceptName = (typeof HV_CR_INTERCEPT_BIT_NAMES)[number];

/** The bit of one intercept in HV_REGISTER_CR_INTERCEPT_CONTROL. */
export function hvCrInterceptBit(name: HvCrInterceptName): bigint {
  return 1n << BigInt(HV_CR_INTERCEPT_BIT_NAMES.indexOf(name));
}

/** Bits 63:25 are RsvdZ [tlfs-vsm]. */
export const HV_CR_INTERCEPT_RESERVED = ~((1n << BigInt(HV_CR_INTERCEPT_BIT_NAMES.length)) - 1n) & ((1n << 64n) - 1n);

// ---------------------------------------------------------------------------
// The register names of the control register and its masks [hv-regs]
// ---------------------------------------------------------------------------

export const HV_X64_REGISTER_CR_INTERCEPT_CONTROL = 0x000e0000;
export const HV_X64_REGISTER_CR_INTERCEPT_CR0_MASK = 0x000e0001;
export const HV_X64_REGISTER_CR_INTERCEPT_CR4_MASK = 0x000e0002;
export const HV_X64_REGISTER_CR_INTERCEPT_IA32_MISC_ENABLE_MASK = 0x000e0003;
