/**
 * A scenario file as written, once it has passed the schema (host/vmm/schema/scenario.schema.json
 * documents every field). The parse-*.ts files turn it into model.ts.
 */
import type { ExecStop } from '../../protocol/messages/index.js';
import type { IntegerText } from './integers.js';
import type { VmBlockText } from './vm-block.js';
import type { RegisterText } from '../vmm/policy/control-register-names.js';

export type FlagsText = IntegerText | IntegerText[];

export interface GuestText {
  op: string;
  vcpu?: number;
  cpl?: 0 | 3;
  index?: IntegerText;
  value?: IntegerText;
  cr?: number;
  set?: IntegerText;
  clear?: IntegerText;
  nr?: IntegerText;
  args?: IntegerText[];
  insn?: 'vmcall' | 'vmmcall';
  leaf?: IntegerText;
  subleaf?: IntegerText;
  code?: string;
  asm?: string[];
  regs?: Record<string, IntegerText>;
  budget?: number;
}

export interface RangeText {
  flags: FlagsText;
  base: IntegerText;
  nmsrs: IntegerText;
  bitmap: string | null;
}

export interface MsrEntryText {
  index: IntegerText;
  value: IntegerText;
}

export interface HostText {
  enableCap?: { cap: IntegerText; args?: IntegerText[]; flags?: IntegerText };
  checkExtension?: { cap: IntegerText };
  setMsrFilter?: { flags: FlagsText; ranges: RangeText[] };
  getMsrs?: { vcpu?: number; indices: IntegerText[] };
  setMsrs?: { vcpu?: number; entries: MsrEntryText[] };
  setSregs?: { vcpu?: number } & Record<string, IntegerText>;
  resetVm?: Record<string, never>;
  initVcpu?: { vcpu?: number };
  snapshot?: { name?: string };
  restore?: { name?: string };
  setCrFilter?: { cr0?: RegisterText; cr4?: RegisterText; flags?: IntegerText; xcr0?: IntegerText };
  setMemoryAttributes?: { address: IntegerText; size: IntegerText; attributes: FlagsText };
  setRegisterIntercepts?: {
    vcpu?: number; intercept: string[]; control?: IntegerText; cr0Mask?: RegisterText; cr4Mask?: RegisterText; miscEnableMask?: IntegerText;
  };
}

/** An answer to a CR-filter exit or a register intercept. */
export interface PinboxAnswerText {
  action: 'allow' | 'deny' | 'value';
  value?: IntegerText;
  limit?: IntegerText;
}

export interface ExitText {
  reason: IntegerText;
  msr?: { reason?: IntegerText; index?: IntegerText; data?: IntegerText };
  heki?: { reason?: IntegerText; value?: IntegerText };
  io?: { port?: IntegerText; size?: number; direction?: 'in' | 'out'; value?: IntegerText };
  cr?: { cr?: 0 | 4; access?: 'mov' | 'clts' | 'lmsw'; old?: IntegerText; new?: IntegerText };
  intercept?: { name?: string; msr?: IntegerText; old?: IntegerText; new?: IntegerText; oldLimit?: IntegerText; newLimit?: IntegerText };
  memory?: { flags?: FlagsText; gpa?: IntegerText; size?: IntegerText; gva?: IntegerText };
}

export interface ExpectText {
  ok?: boolean;
  errno?: string;
  value?: IntegerText;
  ret?: IntegerText;
  fault?: { vector: IntegerText; errorCode?: IntegerText } | null;
  exits?: ExitText[];
  regs?: Record<string, IntegerText>;
  cr?: Record<string, IntegerText>;
  stop?: ExecStop;
  nmsrs?: number;
  msrs?: MsrEntryText[];
}

export interface StepText {
  note?: string;
  guest?: GuestText;
  host?: HostText;
  vmm?: {
    msr?: { error: IntegerText; data?: IntegerText } | 'untouched';
    cr?: PinboxAnswerText;
    intercept?: PinboxAnswerText;
    duringExit?: StepText[];
  };
  expect: ExpectText;
}

export interface ScenarioText {
  $schema?: string;
  name: string;
  source: string;
  description?: string;
  cases?: string[];
  vm?: VmBlockText;
  steps: StepText[];
}
