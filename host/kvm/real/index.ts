/**
 * host/kvm/real: the machine's /dev/kvm behind the KVM API of host/kvm, a thin typed layer
 * over the ioctls (in the manner of rust-vmm's kvm-ioctls). Import it dynamically, only when a
 * real backend is asked for: it loads the optional package koffi on first use (libc.ts).
 */
export { openKvm, Kvm, type RealKvmOptions } from './kvm.js';
export { realBackend } from './backend.js';
export { VmFd } from './vm.js';
export { VcpuFd, type RealVcpuStat } from './vcpu.js';
export { MappedMemory } from './guest-memory.js';
export type { CpuidEntry2 } from './cpuid.js';
export { DEFAULT_RUN_TIMEOUT_MS, deadlineIn, monotonicNow } from './deadline.js';
export { RealKvmUnavailable, type UnavailableReason } from './unavailable.js';
export { probeKvm, type KvmProbe, type ProbeVerdict, type ProbeCapability } from './probe.js';
