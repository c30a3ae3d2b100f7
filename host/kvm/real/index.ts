/**
 * host/kvm/real: the machine's /dev/kvm behind the KVM API of host/kvm, a thin typed layer
 * over the ioctls (in the manner of rust-vmm's kvm-ioctls). Import it dynamically, only when a
 * real backend is asked for: it loads the optional package koffi on first use (libc.ts).
 */
export { openKvm, Kvm, type RealKvmOptions, type RealVmOptions } from './kvm.js';
export { VmFd } from './vm.js';
export { VcpuFd, type RealRunOptions, type RealVcpuStat } from './vcpu.js';
export type { RealVcpuExit, RealVcpuExitReason, RealOnlyExit, RealSyncRegs, KvmRunMmio, KvmRunInternal, KvmRunSystemEvent } from './kvm-run.js';
export { GuestMemory } from './guest-memory.js';
export type { CpuidEntry2 } from './cpuid.js';
export { DEFAULT_RUN_TIMEOUT_MS, deadlineIn, monotonicNow } from './deadline.js';
export { RealKvmUnavailable, type UnavailableReason } from './unavailable.js';
export { probeKvm, type KvmProbe, type ProbeVerdict, type ProbeCapability } from './probe.js';
