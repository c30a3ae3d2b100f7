/**
 * The KVM API both backends implement (docs/architecture.md, "KVM and the VMM"): one interface
 * per fd — the system (system.ts), a VM (vm.ts), a vCPU (vcpu.ts) — kvm_run and its exits
 * (exits.ts), the register structs, guest memory, errors, and the model's extensions
 * (model.ts). A VMM imports this and nothing else of host/kvm; backend.ts hands it a backend.
 */
export { BACKEND_NAMES, loadBackend, modelBackend, type BackendName, type KvmBackend, type ModelBackendOptions, type OpenOptions, type RealBackendOptions } from './backend.js';
export type { GuestCpuid, GuestCpuidOptions } from './cpuid.js';
export type { CrFilterSpec, RegInterceptSpec } from './cr-hardening.js';
export { KvmError } from './errors.js';
export {
  exitNumbers, exitReasonName, exitReasonNumber, KVM_EXITS, UNNAMED_EXIT, type KvmRun, type KvmRunDebug, type KvmRunFailEntry,
  type KvmRunCrFilter, type KvmRunHekiConfigure, type KvmRunHekiDenial, type KvmRunRegIntercept, type KvmRunInternal, type KvmRunIo,
  type KvmRunMembers, type KvmRunMemoryFault, type KvmRunMmio,
  type KvmRunMsr, type KvmRunSystemEvent, type KvmSyncRegs, type ProfileExitNumber, type VcpuExit, type VcpuExitReason,
} from './exits.js';
export { PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, type GuestMemory } from './guest-memory.js';
export type {
  ChainedException, HekiSnapshot, IdtGateView, MemoryAttributeRange, MemoryPermissionRange, MemoryProtectionSnapshot, ModelKvm, ModelMemoryProtection,
  ModelVcpu, ModelVm,
} from './model.js';
export type { MsrFilterRange, MsrFilterSpec } from './msr-filter.js';
export { copyRegs, KVM_REGS_FIELDS, type DescriptorTable, type GprField, type Regs, type RegsField, type Segment, type Sregs } from './regs.js';
export type { KvmSystem, VmOptions } from './system.js';
export type { TracepointEvents, TracepointName, TracepointSource } from './tracepoints.js';
export type { GuestDebug, KvmVcpu, MsrEntry, RunOptions } from './vcpu.js';
export type { KvmMemoryAttributes, KvmVm } from './vm.js';
