/**
 * A scenario file as written, once it has passed the schema (host/vmm/schema/scenario.schema.json
 * documents every field). The parse-*.ts files turn it into model.ts.
 */
import type { ExecStop } from '../../protocol/messages/index.js';
import type { IntegerText } from './integers.js';
import type { VmBlockText } from './vm-block.js';

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
}

export interface ExitText {
  reason: IntegerText;
  msr?: { reason?: IntegerText; index?: IntegerText; data?: IntegerText };
  heki?: { reason?: IntegerText; value?: IntegerText };
  io?: { port?: IntegerText; size?: number; direction?: 'in' | 'out'; value?: IntegerText };
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
  vmm?: { msr?: { error: IntegerText; data?: IntegerText } | 'untouched'; duringExit?: StepText[] };
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
