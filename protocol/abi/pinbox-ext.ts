/**
 * pinbox's out-of-tree KVM ABI: numbers no Linux kernel defines, for what the model offers
 * beyond mainline. They are chosen not to collide with mainline or with any proposal pinbox
 * knows of (docs/memory-protection.md §3.1):
 *   - capabilities from PINBOX_CAP_BASE (mainline caps are below 300, Heki's 235-237);
 *   - memory attributes in bits 24-27: mainline has PRIVATE at bit 3 and keeps bits 0-2 for
 *     RWX, Heki v2 used bits 4-7 internally, the 2023 VSM RFC used bit 4 for NO_ACCESS; below
 *     bit 31, because KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) returns the mask as an int;
 *   - memory-fault exit flags in bits 24-27: mainline has PRIVATE at bit 3, and proposals use
 *     bits 0-2 (VSM 2024 access kinds) and 4 (USERFAULT).
 * The meaning of the attributes follows the 2024 VSM proposal, which is in the negative sense
 * so that "no attribute" is full access (N. Saenz Julienne, "KVM: x86: Introducing Core Building
 * Blocks for Hyper-V VSM Emulation", 20240609154945.55332-16-nsaenz@amazon.com).
 */

/** Where pinbox's capability numbers start ("PB" in the upper half). */
export const PINBOX_CAP_BASE = 0x5042_0000;
/**
 * KVM_ENABLE_CAP on the VM: how a second-stage violation of a memory attribute is delivered —
 * args[0] = PINBOX_MEMORY_FAULT_EXIT (0, the default: KVM_EXIT_MEMORY_FAULT to user space) or
 * PINBOX_MEMORY_FAULT_INJECT_PF (1: a #PF injected into the guest, as Heki did).
 */
export const KVM_CAP_PINBOX_MEMORY_FAULT_POLICY = PINBOX_CAP_BASE + 1;
export const PINBOX_MEMORY_FAULT_EXIT = 0;
export const PINBOX_MEMORY_FAULT_INJECT_PF = 1;
/** KVM_ENABLE_CAP on the VM: args[0] = 1 turns on mode-based execute control (EPT bit 10, user execute). */
export const KVM_CAP_PINBOX_MBEC = PINBOX_CAP_BASE + 2;

/** Not readable; a page with NR must also have NW and NX (and NUX): write or execute needs read. */
export const KVM_MEMORY_ATTRIBUTE_PINBOX_NR = 1n << 24n;
/** Not writable. */
export const KVM_MEMORY_ATTRIBUTE_PINBOX_NW = 1n << 25n;
/** Not executable; with MBEC, not executable from supervisor-mode linear addresses. */
export const KVM_MEMORY_ATTRIBUTE_PINBOX_NX = 1n << 26n;
/** With MBEC only: not executable from user-mode linear addresses (EINVAL without MBEC). */
export const KVM_MEMORY_ATTRIBUTE_PINBOX_NUX = 1n << 27n;
export const KVM_MEMORY_ATTRIBUTES_PINBOX_MASK =
  KVM_MEMORY_ATTRIBUTE_PINBOX_NR | KVM_MEMORY_ATTRIBUTE_PINBOX_NW | KVM_MEMORY_ATTRIBUTE_PINBOX_NX |
  KVM_MEMORY_ATTRIBUTE_PINBOX_NUX;

/** kvm_run.memory_fault.flags: the refused access was a read / a write / an instruction fetch (exactly one). */
export const KVM_MEMORY_EXIT_FLAG_PINBOX_READ = 1n << 24n;
export const KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE = 1n << 25n;
export const KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC = 1n << 26n;
/** kvm_run.memory_fault.flags: the pinbox field `gva` holds the guest linear address. */
export const KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID = 1n << 27n;
