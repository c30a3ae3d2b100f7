/**
 * The local APIC's registers (offsets in the xAPIC page; as MSRs, 0x800 + offset / 16) and their
 * bits, as the SDM defines them (vol. 3A, "Advanced Programmable Interrupt Controller") and
 * arch/x86/include/asm/apicdef.h names them.
 */

export const APIC_ID = 0x20;
export const APIC_LVR = 0x30;
export const APIC_TASKPRI = 0x80;
export const APIC_ARBPRI = 0x90;
export const APIC_PROCPRI = 0xa0;
export const APIC_EOI = 0xb0;
export const APIC_LDR = 0xd0;
export const APIC_DFR = 0xe0;
export const APIC_SPIV = 0xf0;
export const APIC_ISR = 0x100;
export const APIC_TMR = 0x180;
export const APIC_IRR = 0x200;
export const APIC_ESR = 0x280;
export const APIC_LVTCMCI = 0x2f0;
export const APIC_ICR = 0x300;
export const APIC_ICR2 = 0x310;
export const APIC_LVTT = 0x320;
export const APIC_LVTTHMR = 0x330;
export const APIC_LVTPC = 0x340;
export const APIC_LVT0 = 0x350;
export const APIC_LVT1 = 0x360;
export const APIC_LVTERR = 0x370;
export const APIC_TMICT = 0x380;
export const APIC_TMCCT = 0x390;
export const APIC_TDCR = 0x3e0;
export const APIC_SELF_IPI = 0x3f0;

export const APIC_LVR_DIRECTED_EOI = 1 << 24;
export const APIC_SPIV_APIC_ENABLED = 1 << 8;
export const APIC_SPIV_DIRECTED_EOI = 1 << 12;
export const APIC_ICR_BUSY = 1 << 12;
export const APIC_VECTOR_MASK = 0xff;
export const APIC_MODE_MASK = 0x700;
export const APIC_MODE_EXTINT = 0x7;
export const APIC_SEND_PENDING = 1 << 12;
export const APIC_INPUT_POLARITY = 1 << 13;
export const APIC_LVT_REMOTE_IRR = 1 << 14;
export const APIC_LVT_LEVEL_TRIGGER = 1 << 15;
export const APIC_LVT_MASKED = 1 << 16;
export const APIC_LVT_TIMER_PERIODIC = 1 << 17;
export const APIC_LVT_TIMER_TSCDEADLINE = 2 << 17;
