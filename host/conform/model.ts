/**
 * A scenario after parsing: every name resolved to its number (Heki numbers per the scenario's
 * profile), every integer a number or a bigint (64-bit values), hex bytes as Uint8Array. The
 * file format is host/vmm/schema/scenario.schema.json; scenario.ts parses it into this.
 */
import type { ErrnoName } from '../../protocol/abi.js';
import type { ExecStop } from '../../protocol/messages/index.js';
import type { ScenarioVm } from './vm-block.js';

export const GENERAL_REGISTERS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;
export type GeneralRegister = (typeof GENERAL_REGISTERS)[number];
/** What exec reports after the code stopped: the general registers, RIP and RFLAGS. */
export type StopRegister = GeneralRegister | 'rip' | 'rflags';
export type RegisterValues<K extends string> = Partial<Record<K, bigint>>;

export const CONTROL_REGISTER_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8'] as const;
export type ControlRegisterName = (typeof CONTROL_REGISTER_NAMES)[number];
/** The control registers MOV CR can name (SDM vol. 2, "MOV—Move to/from Control Registers"). */
export type CrNumber = 0 | 2 | 3 | 4 | 8;

export type { ExecStop };
export type HypercallInsn = 'vmcall' | 'vmmcall';

// ---------------------------------------------------------------------------------------------
// Guest actions
// ---------------------------------------------------------------------------------------------

/** A guest action a target runs as one instruction (or one block of code) on a vCPU. */
export type TargetGuestAction =
  | { readonly op: 'rdmsr'; readonly index: number }
  | { readonly op: 'wrmsr'; readonly index: number; readonly value: bigint }
  | { readonly op: 'readCr'; readonly cr: CrNumber }
  | { readonly op: 'writeCr'; readonly cr: CrNumber; readonly value: bigint }
  | { readonly op: 'lmsw'; readonly value: number }
  | { readonly op: 'clts' }
  | { readonly op: 'hypercall'; readonly nr: bigint; readonly args: readonly bigint[]; readonly insn: HypercallInsn }
  | { readonly op: 'cpuid'; readonly leaf: number; readonly subleaf: number }
  | {
      readonly op: 'exec';
      readonly code: Uint8Array;
      readonly regs: RegisterValues<GeneralRegister>;
      readonly budget: number | undefined;
    };

/** writeCrMasked is the runner's: it reads the CR, then writes (value | set) & ~clear. */
export type WriteCrMasked = { readonly op: 'writeCrMasked'; readonly cr: CrNumber; readonly set: bigint; readonly clear: bigint };
export type GuestAction = TargetGuestAction | WriteCrMasked;
export type GuestOp = GuestAction['op'];

/** How user space answers an MSR exit: kvm_run.msr.error and .data, or not at all. */
export type MsrExitAnswer = { readonly error: number; readonly data: bigint } | 'untouched';

/** "Without it, MSR exits are answered with error 1" (issue 6): KVM then injects #GP. */
export const DEFAULT_MSR_EXIT_ANSWER: MsrExitAnswer = Object.freeze({ error: 1, data: 0n });

/** How user space answers a CR-filter exit or a register intercept (docs/cr-filter.md, docs/register-intercepts.md). */
export interface PinboxAnswer {
  readonly action: 'allow' | 'deny' | 'value';
  readonly value?: bigint;
  readonly limit?: number;
}

/** Without one, the VMM's default: deny (a CR filter's, and a register intercept's with no monitor). */
export const DEFAULT_PINBOX_ANSWER: PinboxAnswer = Object.freeze({ action: 'deny' });

// ---------------------------------------------------------------------------------------------
// Host actions
// ---------------------------------------------------------------------------------------------

export interface FilterRange {
  readonly flags: number;
  readonly base: number;
  readonly nmsrs: number;
  /** null: no bitmap at all, a NULL pointer. */
  readonly bitmap: Uint8Array | null;
}

export interface MsrEntry {
  readonly index: number;
  readonly value: bigint;
}

export type SregsField = ControlRegisterName | 'efer' | 'apicBase';

export type HostAction =
  | { readonly op: 'enableCap'; readonly cap: number; readonly args: readonly bigint[]; readonly flags: number }
  | { readonly op: 'checkExtension'; readonly cap: number }
  | { readonly op: 'setMsrFilter'; readonly flags: number; readonly ranges: readonly FilterRange[] }
  | { readonly op: 'getMsrs'; readonly vcpu: number; readonly indices: readonly number[] }
  | { readonly op: 'setMsrs'; readonly vcpu: number; readonly entries: readonly MsrEntry[] }
  | { readonly op: 'setSregs'; readonly vcpu: number; readonly sregs: RegisterValues<SregsField> }
  | { readonly op: 'resetVm' }
  | { readonly op: 'initVcpu'; readonly vcpu: number }
  | { readonly op: 'snapshot'; readonly name: string }
  | { readonly op: 'restore'; readonly name: string }
  | { readonly op: 'setCrFilter'; readonly flags: number; readonly cr0Mask: bigint; readonly cr4Mask: bigint; readonly xcr0Mask: bigint | undefined }
  | {
      readonly op: 'setMemoryAttributes';
      readonly address: bigint;
      readonly size: bigint;
      readonly attributes: bigint;
    }
  | {
      readonly op: 'setRegisterIntercepts';
      readonly vcpu: number | undefined;
      readonly control: bigint;
      readonly cr0Mask: bigint;
      readonly cr4Mask: bigint;
      readonly miscEnableMask: bigint;
    };
export type HostOp = HostAction['op'];

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

export interface ExpectedFault {
  readonly vector: number;
  readonly errorCode: number | undefined;
}

/** One expected exit; undefined fields are not checked. */
export interface ExpectedExit {
  readonly reason: number;
  readonly msr?: { readonly reason?: number; readonly index?: number; readonly data?: bigint };
  readonly heki?: { readonly reason?: number; readonly value?: bigint };
  readonly io?: { readonly port?: number; readonly size?: number; readonly direction?: 'in' | 'out'; readonly value?: number };
  readonly cr?: { readonly cr?: number; readonly access?: string; readonly old?: bigint; readonly new?: bigint };
  readonly intercept?: {
    readonly name?: string; readonly msr?: number; readonly old?: bigint; readonly new?: bigint; readonly oldLimit?: number; readonly newLimit?: number;
  };
  readonly memory?: { readonly flags?: bigint; readonly gpa?: bigint; readonly size?: bigint; readonly gva?: bigint };
}

/** What a step must produce; an undefined field is not checked. */
export interface Expect {
  readonly ok?: boolean;
  readonly errno?: ErrnoName;
  readonly value?: bigint;
  readonly ret?: bigint;
  /** null: the step must not fault. */
  readonly fault?: ExpectedFault | null;
  readonly exits?: readonly ExpectedExit[];
  readonly regs?: RegisterValues<StopRegister>;
  readonly cr?: RegisterValues<ControlRegisterName>;
  readonly stop?: ExecStop;
  readonly nmsrs?: number;
  readonly msrs?: readonly MsrEntry[];
}

// ---------------------------------------------------------------------------------------------
// Steps and scenarios
// ---------------------------------------------------------------------------------------------

interface StepCommon {
  /** JSON Pointer of the step in its file: "/steps/3", "/steps/3/vmm/duringExit/0". */
  readonly path: string;
  readonly note: string | undefined;
  readonly expect: Expect;
}

export interface GuestStep extends StepCommon {
  readonly kind: 'guest';
  readonly vcpu: number;
  readonly cpl: 0 | 3;
  readonly action: GuestAction;
  readonly answer: MsrExitAnswer;
  /** The answers to the step's CR-filter exits and register intercepts. */
  readonly crAnswer: PinboxAnswer;
  readonly interceptAnswer: PinboxAnswer;
  /** Run while the vCPU sits in the step's first user-space exit; empty for none. */
  readonly duringExit: readonly Step[];
}

export interface HostStep extends StepCommon {
  readonly kind: 'host';
  readonly action: HostAction;
}

export type Step = GuestStep | HostStep;

export interface Scenario {
  /** The file it came from, as given to the parser. */
  readonly file: string;
  readonly name: string;
  readonly source: string;
  readonly description: string | undefined;
  /** Catalogued cases it covers: "msr-filter §7 #3". */
  readonly cases: readonly string[];
  readonly vm: ScenarioVm;
  readonly steps: readonly Step[];
}
