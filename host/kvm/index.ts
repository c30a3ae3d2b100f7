/**
 * host/kvm ("the kernel" of docs/architecture.md): the KVM API both backends implement
 * (host/kvm/api) and the model that implements it over host/x86. The real backend
 * (host/kvm/real) is not here: loadBackend('kvm') loads it when asked for.
 */
export * from './api/index.js';
export { Kvm, type KvmOptions } from './kvm.js';
export { Vm, type CpuFactory } from './vm.js';
export { Vcpu } from './vcpu.js';
export { DEFAULT_GUEST_CPUID, DEFAULT_KVM_PV_FEATURES } from './cpuid.js';
export { Tracepoints } from './tracepoints.js';
export { EMULATED_MSRS } from './msr-table.js';
