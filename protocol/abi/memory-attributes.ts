/**
 * Guest memory attributes and memory-fault exits, upstream (merged in Linux 6.8):
 *   [uapi-kvm]  include/uapi/linux/kvm.h — KVM_SET_MEMORY_ATTRIBUTES, struct kvm_memory_attributes,
 *               KVM_EXIT_MEMORY_FAULT and kvm_run.memory_fault, KVM_CAP_MEMORY_ATTRIBUTES
 *   [api-rst]   Documentation/virt/kvm/api.rst, "KVM_SET_MEMORY_ATTRIBUTES", "KVM_EXIT_MEMORY_FAULT"
 * pinbox's read/write/execute attributes and the access-kind flags of its memory-fault exit are
 * out of tree: pinbox-ext.ts. docs/memory-protection.md §3.
 */

/** _IOW(KVMIO, 0xd2, struct kvm_memory_attributes): 0x4020aed2 [uapi-kvm] */
export const KVM_SET_MEMORY_ATTRIBUTES = 0x4020aed2;
/** The only upstream attribute; bits 0-2 are reserved for RWX (Sean Christopherson, Y8HU45aISOPwX76D@google.com). */
export const KVM_MEMORY_ATTRIBUTE_PRIVATE = 1n << 3n;
/** KVM_CHECK_EXTENSION returns the attributes the VM supports [uapi-kvm] */
export const KVM_CAP_MEMORY_ATTRIBUTES = 233;
/** kvm_run.memory_fault is filled on -EFAULT/-EHWPOISON from KVM_RUN [uapi-kvm] */
export const KVM_CAP_MEMORY_FAULT_INFO = 232;
/** struct kvm_memory_attributes: address u64 @0, size u64 @8, attributes u64 @16, flags u64 @24 */
export const KVM_MEMORY_ATTRIBUTES_SIZE = 32;

/** kvm_run.exit_reason 39 [uapi-kvm] (KVM_EXIT_HEKI_CONFIGURE in the Heki v2 profile, heki.ts) */
export const KVM_EXIT_MEMORY_FAULT = 39;
/** kvm_run.memory_fault.flags: the access was to private memory [uapi-kvm] */
export const KVM_MEMORY_EXIT_FLAG_PRIVATE = 1n << 3n;
/** kvm_run.memory_fault sits at the union, offset 32: flags @32, gpa @40, size @48 [uapi-kvm] */
export const KVM_RUN_MEMORY_FAULT_OFFSET = 32;
