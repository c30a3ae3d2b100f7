/**
 * Architectural constants of the core that protocol/abi/x86-arch.ts does not carry (the core's
 * own encodings: paging-structure bits, descriptor types, model parameters). Each names its
 * source. protocol/abi/x86-arch.ts remains the home of everything shared with host/kvm and the SDK.
 */

// Paging-structure entry bits, 4-level paging (SDM vol. 3A §4.5, tables 4-15 .. 4-20).
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
/** Page size (in a PDPTE: 1 GiB page; in a PDE: 2 MiB page; reserved in a PML4E). */
export const PTE_PS = 1 << 7;
export const PTE_G = 1 << 8;
/** XD is bit 63: bit 31 of an entry's high half. */
export const PTE_HI_XD = 1 << 31;

/**
 * Model decision — MAXPHYADDR = 46 (a common Intel server value; CPUID.80000008H:EAX[7:0]).
 * Physical-address bits 51:46 of every paging-structure entry are reserved (SDM vol. 3A §4.5).
 */
export const MAXPHYADDR = 46;
/** Bits 51:MAXPHYADDR as a mask of an entry's high half. */
export const PTE_HI_RSVD = ((1 << (52 - 32)) - 1) & ~((1 << (MAXPHYADDR - 32)) - 1);
/** Bits MAXPHYADDR-1:32 of a physical address, as a mask of an entry's high half. */
export const PTE_HI_ADDR = (1 << (MAXPHYADDR - 32)) - 1;
/** Reserved low bits of a 1 GiB PDPTE (29:13) and a 2 MiB PDE (20:13): SDM tables 4-16, 4-18. */
export const PDPTE_1G_RSVD_LO = 0x3fffe000;
export const PDE_2M_RSVD_LO = 0x001fe000;

// System-descriptor types in 64-bit mode (SDM vol. 3A §3.5, table 3-2).
/** An LDT descriptor (SDM vol. 3A table 3-2, system segment type 2). */
export const DESC_TYPE_LDT = 0x2;
export const DESC_TYPE_TSS_AVAILABLE = 0x9;
export const DESC_TYPE_TSS_BUSY = 0xb;
export const DESC_TYPE_INTERRUPT_GATE = 0xe;
export const DESC_TYPE_TRAP_GATE = 0xf;

/** Error-code bits of a selector error code (SDM vol. 3A §6.13): EXT, IDT, TI. */
export const ERRC_EXT = 1 << 0;
export const ERRC_IDT = 1 << 1;
export const ERRC_TI = 1 << 2;

/** RFLAGS bits that software can change (SDM vol. 1 §3.4.3): all but bit 1 (fixed at 1) and the reserved bits. */
export const RFLAGS_DEFINED = 0x003f7fd5;
