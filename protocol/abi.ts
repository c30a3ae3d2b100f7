/**
 * Every ABI number pinbox shares between the host and the guest side, each defined once, in a
 * file per source (see each file's header for its citations):
 *   abi/errno.ts       Linux errno values
 *   abi/kvm-uapi.ts    the KVM API: kvm_run exits, capabilities, sync regs, MSR filter and exits
 *   abi/kvm-para.ts    KVM's paravirtual interface: hypercalls, PV MSRs, PV CPUID
 *   abi/heki.ts        Heki's hypercall, exits and ABI profiles
 *   abi/heki-memory.ts Heki's memory hypercalls (RFC v1 and v2)
 *   abi/memory-attributes.ts  KVM memory attributes and KVM_EXIT_MEMORY_FAULT (upstream)
 *   abi/andersen.ts    John Andersen's PV CR-pinning MSRs and CPUID bit (2020, out of tree)
 *   abi/hyperv-vsm.ts  the Hyper-V TLFS's secure register intercept bits
 *   abi/pinbox-ext.ts  pinbox's own KVM extensions, out of tree: the CR filter, register intercepts, RWX attributes
 *   abi/x86-arch.ts    the architecture: CR/EFER/RFLAGS bits, vectors, MSRs, CPUID bits
 *   abi/local-apic.ts  the local APIC's registers and bits
 * Constants internal to KVM, which user space never sees, live in host/kvm beside their use.
 */
export * from './abi/errno.js';
export * from './abi/kvm-uapi.js';
export * from './abi/kvm-para.js';
export * from './abi/heki.js';
export * from './abi/heki-memory.js';
export * from './abi/memory-attributes.js';
export * from './abi/andersen.js';
export * from './abi/hyperv-vsm.js';
export * from './abi/pinbox-ext.js';
export * from './abi/x86-arch.js';
export * from './abi/local-apic.js';
