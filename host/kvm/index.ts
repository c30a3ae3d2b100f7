/** host/kvm: the KVM model ("the kernel" of docs/architecture.md). */
export { Kvm, type KvmOptions, type VmOptions } from './kvm.js';
export { Vm, type CpuFactory } from './vm.js';
export { Vcpu, type MsrEntry, type RunOptions } from './vcpu.js';
export type {
  VcpuExit,
  VcpuExitReason,
  KvmRunMsr,
  KvmRunIo,
  KvmRunHekiConfigure,
  KvmRunHekiDenial,
  KvmRunFailEntry,
} from './exits.js';
export { KvmError } from './errors.js';
export type { MsrFilterSpec, MsrFilterRange } from './msr-filter.js';
export { DEFAULT_GUEST_CPUID, DEFAULT_KVM_PV_FEATURES, type GuestCpuid, type GuestCpuidOptions } from './cpuid.js';
export type { HekiSnapshot } from './heki.js';
export { Tracepoints, type TracepointEvents, type TracepointName } from './tracepoints.js';
export { EMULATED_MSRS } from './msr-table.js';
