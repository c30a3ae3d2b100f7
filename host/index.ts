/** pinbox/host: the modelled x86-64 core, the KVM model and the test VMM. */
export type { Intercept, InterceptKind } from './x86/intercept.js';
export type { Regs, Sregs, Segment, DescriptorTable } from './kvm/api/regs.js';
export type { GuestCpu, ControlRegister, AccessKind } from './x86/guest-cpu.js';
export { GPR_NAMES, SEGMENT_NAMES } from './x86/state.js';
export { PhysicalMemory, PAGE_SIZE } from './x86/memory.js';
export { SecondStage, S2_READ, S2_WRITE, S2_EXEC, S2_USER_EXEC, S2_ALL } from './x86/mmu/second-stage.js';
export { Cpu, type CpuOptions } from './x86/cpu.js';
export { MAXPHYADDR } from './x86/arch.js';
export { decode, DECODE_INVALID, DECODE_TOO_LONG, DECODE_NEED_MORE, MAX_INSN_LENGTH } from './x86/decode/decoder.js';
export type { DecodeStatus } from './x86/decode/decoder.js';
export { Insn } from './x86/decode/insn.js';
export { OPCODE_TABLE } from './x86/decode/table.js';
export type { OpcodeEntry, OperandForm, SizeRule, Family, Flow, JitForm } from './x86/decode/table-types.js';
export { describeOperands, formatInsn, mnemonicOf, registerName, type OperandDescription } from './x86/decode/describe.js';
export * from './kvm/index.js';
/** The VMM (host/vmm): everything under `vmm`, the entry points also by name. */
export * as vmm from './vmm/index.js';
export {
  Vmm, Machine, VmmError, startServer, serveGuest, parsePolicy, parsePolicyText, loadPolicyFile, PolicyError, EventLog,
  TraceWriter, readTrace, takeSnapshot, restoreSnapshot, DEFAULT_BUDGET, openBackend, modelSupport, HostSupport,
  type VmmOptions, type PinboxServer, type ServerOptions, type CompiledPolicy, type GuestRequest, type GuestResult,
  type PerformOptions, type UserSpaceExit, type MsrExitAnswer, type MsrExitChoice, type MsrExitHandler, type Event,
} from './vmm/index.js';
