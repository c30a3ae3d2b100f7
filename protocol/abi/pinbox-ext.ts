/**
 * pinbox's own extensions of the KVM API — the CR filter, the secure register intercepts and the
 * RWX memory attributes — numbered out of tree (docs/pinbox-abi.md, docs/memory-protection.md). No kernel has them: the KVM model implements them,
 * and a real KVM answers 0 to their capabilities.
 *
 * Why these numbers cannot collide with mainline (include/uapi/linux/kvm.h, Linux 6.19 and the
 * kvm tree of early 2026):
 *   - exit reasons are handed out one by one from 0; the highest in use is 41
 *     (KVM_EXIT_ARM_SEA), with 42 proposed (KVM_EXIT_SNP_REQ_CERTS);
 *   - capabilities likewise; the highest is 246 (KVM_CAP_S390_USER_OPEREXEC), 247 proposed;
 *   - every KVM ioctl has the type byte KVMIO (0xAE), whose 256 numbers are all spoken for
 *     (0x00-0x1F and 0x40-0xFF KVM, 0x20-0x3F nitro_enclaves in ioctl-number.rst).
 * pinbox's exits and capabilities start at 0x5042_0000 ("PB"): at the pace mainline allocates
 * them (about ten capabilities a year) they are out of reach for good, and they are far from
 * the Heki profiles' numbers (39-41, 235-237), which collide with mainline already. Its ioctls
 * take the type byte 'P' (0x50) in place of KVMIO: KVM dispatches a VM or vCPU fd's ioctls on
 * KVMIO commands only, so no mainline KVM ioctl can ever equal one of them.
 *
 * pinbox's memory attributes and memory-fault flags (docs/memory-protection.md §3.1) take bits
 * 24-27 of their words: mainline has PRIVATE at bit 3 and keeps bits 0-2 for RWX, Heki v2 used
 * bits 4-7 internally, the 2023 VSM RFC used bit 4 for NO_ACCESS, and proposals use flag bits
 * 0-2 (VSM 2024 access kinds) and 4 (USERFAULT); they stay below bit 31 because
 * KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) returns the mask as an int. The attributes are
 * in the negative sense of the 2024 VSM proposal, so that "no attribute" is full access
 * (N. Saenz Julienne, "KVM: x86: Introducing Core Building Blocks for Hyper-V VSM Emulation",
 * 20240609154945.55332-16-nsaenz@amazon.com).
 */

/** The base of pinbox's exit reasons and capabilities: "PB" in the top half. */
export const PINBOX_NUMBER_BASE = 0x5042_0000;

// ---------------------------------------------------------------------------
// Capabilities (KVM_CHECK_EXTENSION on the VM fd)
// ---------------------------------------------------------------------------

/** The CR filter: answers the control registers a filter can mask, bit n for CRn (CR0, CR4: 0x11). */
export const KVM_CAP_PINBOX_CR_FILTER = PINBOX_NUMBER_BASE + 1;
/** Secure register intercepts: answers the HV_REGISTER_CR_INTERCEPT_CONTROL bits pinbox implements. */
export const KVM_CAP_PINBOX_REG_INTERCEPTS = PINBOX_NUMBER_BASE + 2;
/**
 * KVM_ENABLE_CAP on the VM: how a second-stage violation of a memory attribute is delivered —
 * args[0] = PINBOX_MEMORY_FAULT_EXIT (0, the default: KVM_EXIT_MEMORY_FAULT to user space) or
 * PINBOX_MEMORY_FAULT_INJECT_PF (1: a #PF injected into the guest, as Heki did).
 */
export const KVM_CAP_PINBOX_MEMORY_FAULT_POLICY = PINBOX_NUMBER_BASE + 3;
export const PINBOX_MEMORY_FAULT_EXIT = 0;
export const PINBOX_MEMORY_FAULT_INJECT_PF = 1;
/** KVM_ENABLE_CAP on the VM: args[0] = 1 turns on mode-based execute control (EPT bit 10, user execute). */
export const KVM_CAP_PINBOX_MBEC = PINBOX_NUMBER_BASE + 4;

// ---------------------------------------------------------------------------
// Exit reasons (kvm_run.exit_reason)
// ---------------------------------------------------------------------------

/** A guest write changed a bit of CR0/CR4 the CR filter masks: kvm_run.cr_filter. */
export const KVM_EXIT_PINBOX_CR_FILTER = PINBOX_NUMBER_BASE + 1;
/** A guest access a secure register intercept covers: kvm_run.reg_intercept. */
export const KVM_EXIT_PINBOX_REG_INTERCEPT = PINBOX_NUMBER_BASE + 2;

// ---------------------------------------------------------------------------
// ioctls: _IOC(dir, 'P', nr, size) as include/uapi/asm-generic/ioctl.h builds them
// ---------------------------------------------------------------------------

/** The ioctl type byte of pinbox's extension ioctls ('P'); KVM's own are KVMIO, 0xAE. */
export const PINBOX_IOC_TYPE = 0x50;
const IOC_WRITE = 1;
const IOC_READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (PINBOX_IOC_TYPE << 8) | nr) >>> 0;
}

/** sizeof(struct pinbox_cr_filter): flags, pad, cr0_mask, cr4_mask, xcr0_mask, reserved[4]. */
export const SIZEOF_PINBOX_CR_FILTER = 64;
/** sizeof(struct pinbox_reg_intercepts): control, cr0_mask, cr4_mask, misc_enable_mask, reserved[4]. */
export const SIZEOF_PINBOX_REG_INTERCEPTS = 64;

/** VM ioctl: install a CR filter, atomically (a refused one leaves the old in force). */
export const PINBOX_SET_CR_FILTER = ioc(IOC_WRITE, 0x01, SIZEOF_PINBOX_CR_FILTER);
/** vCPU ioctl: the secure register intercepts of one vCPU (HvCallSetVpRegisters of the TLFS). */
export const PINBOX_SET_REG_INTERCEPTS = ioc(IOC_WRITE, 0x02, SIZEOF_PINBOX_REG_INTERCEPTS);
export const PINBOX_GET_REG_INTERCEPTS = ioc(IOC_READ, 0x03, SIZEOF_PINBOX_REG_INTERCEPTS);

// ---------------------------------------------------------------------------
// What user space answers to either exit (kvm_run.cr_filter.action, .reg_intercept.action)
// ---------------------------------------------------------------------------

/** The write (or read) goes on: the rest of KVM's checks still apply. */
export const PINBOX_ANSWER_ALLOW = 0;
/** #GP(0), the register unchanged, RIP on the instruction. */
export const PINBOX_ANSWER_DENY = 1;
/** The access goes on with user space's value in place of the guest's (CR filter: substitute; intercept: emulate). */
export const PINBOX_ANSWER_VALUE = 2;

// ---------------------------------------------------------------------------
// kvm_run.cr_filter.access: how the guest wrote (the VMX CR-access exit qualification's bits 5:4)
// ---------------------------------------------------------------------------

/** MOV to CR (Intel SDM vol. 3C, table 28-3, access type 0). */
export const PINBOX_CR_ACCESS_MOV = 0;
/** CLTS (access type 2). */
export const PINBOX_CR_ACCESS_CLTS = 2;
/** LMSW (access type 3). */
export const PINBOX_CR_ACCESS_LMSW = 3;

/** struct pinbox_cr_filter.flags: none are defined; any bit is EINVAL. */
export const PINBOX_CR_FILTER_VALID_FLAGS = 0;
/** The registers a CR filter can mask, as KVM_CAP_PINBOX_CR_FILTER answers them: CR0 and CR4. */
export const PINBOX_CR_FILTER_REGISTERS = (1 << 0) | (1 << 4);

// ---------------------------------------------------------------------------
// Memory attributes (KVM_SET_MEMORY_ATTRIBUTES) and kvm_run.memory_fault.flags
// ---------------------------------------------------------------------------

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

/**
 * What `attributes` lacks for its NR (the VSM 2024 proposal's rule: write or execute needs read):
 * NW and NX, and NUX with MBEC; 0 when it has no NR or has them all. KVM_SET_MEMORY_ATTRIBUTES
 * refuses the rest (EINVAL), and a policy's ranges are checked with the same rule before any is set.
 */
export function pinboxNoReadLacks(attributes: bigint, mbec: boolean): bigint {
  if ((attributes & KVM_MEMORY_ATTRIBUTE_PINBOX_NR) === 0n) return 0n;
  const needed = KVM_MEMORY_ATTRIBUTE_PINBOX_NW | KVM_MEMORY_ATTRIBUTE_PINBOX_NX | (mbec ? KVM_MEMORY_ATTRIBUTE_PINBOX_NUX : 0n);
  return needed & ~attributes;
}

/** kvm_run.memory_fault.flags: the refused access was a read / a write / an instruction fetch (exactly one). */
export const KVM_MEMORY_EXIT_FLAG_PINBOX_READ = 1n << 24n;
export const KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE = 1n << 25n;
export const KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC = 1n << 26n;
/** kvm_run.memory_fault.flags: the pinbox field `gva` holds the guest linear address. */
export const KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID = 1n << 27n;
