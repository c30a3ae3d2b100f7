/**
 * A step's `expect`, as written, to model.ts's Expect — checking that each key fits the step
 * (a wrmsr has no value to check, a host operation causes no exits) and that the keys do not
 * contradict each other (a faulting instruction returns no value: PROTOCOL.md §5).
 */
import { isErrnoName } from './abi-names.js';
import type { ExitText, ExpectText } from './document.js';
import { toBigInt, toNumber, toU64TwosComplement } from './integers.js';
import {
  CONTROL_REGISTER_NAMES, GENERAL_REGISTERS, type ExpectedExit, type Expect, type GuestOp, type HostAction,
  type HostOp, type StopRegister,
} from './model.js';
import type { ParseContext } from './parse-context.js';
import { parseRegisterValues } from './parse-guest.js';
import { resolveExitReason, resolveHekiReason, resolveMemoryExitFlags, resolveMsrExitReason } from './resolve-names.js';
import { errnoProblem } from './name-check.js';

export type StepShape = { readonly kind: 'guest'; readonly op: GuestOp } | { readonly kind: 'host'; readonly op: HostOp };

type ExpectKey = keyof ExpectText;

/** The steps each key can be checked on; undefined: every step. */
const FITS: Readonly<Record<ExpectKey, readonly string[] | undefined>> = {
  ok: ['host', 'guest'],
  errno: ['host'],
  value: ['rdmsr', 'readCr', 'checkExtension'],
  ret: ['hypercall'],
  fault: ['guest'],
  exits: ['guest'],
  regs: ['exec', 'cpuid'],
  cr: undefined,
  stop: ['exec'],
  nmsrs: ['getMsrs', 'setMsrs'],
  msrs: ['getMsrs'],
};

const STOP_REGISTERS: readonly StopRegister[] = [...GENERAL_REGISTERS, 'rip', 'rflags'];
/** CPUID writes only EAX, EBX, ECX and EDX. */
const CPUID_REGISTERS: readonly string[] = ['rax', 'rbx', 'rcx', 'rdx'];

function fits(key: ExpectKey, step: StepShape): boolean {
  const where = FITS[key];
  return where === undefined || where.includes(step.kind) || where.includes(step.op);
}

function parseExit(text: ExitText, path: string, cx: ParseContext): ExpectedExit | undefined {
  const reason = resolveExitReason(text.reason, `${path}/reason`, cx);
  const msr = text.msr && {
    ...(text.msr.reason !== undefined && { reason: resolveMsrExitReason(text.msr.reason, `${path}/msr/reason`, cx) }),
    ...(text.msr.index !== undefined && { index: toNumber(text.msr.index) }),
    ...(text.msr.data !== undefined && { data: toBigInt(text.msr.data) }),
  };
  const heki = text.heki && {
    ...(text.heki.reason !== undefined && { reason: resolveHekiReason(text.heki.reason, `${path}/heki/reason`, cx) }),
    ...(text.heki.value !== undefined && { value: toBigInt(text.heki.value) }),
  };
  const io = text.io && {
    ...(text.io.port !== undefined && { port: toNumber(text.io.port) }),
    ...(text.io.size !== undefined && { size: text.io.size }),
    ...(text.io.direction !== undefined && { direction: text.io.direction }),
    ...(text.io.value !== undefined && { value: toNumber(text.io.value) }),
  };
  const cr = text.cr && {
    ...(text.cr.cr !== undefined && { cr: text.cr.cr }),
    ...(text.cr.access !== undefined && { access: text.cr.access }),
    ...(text.cr.old !== undefined && { old: toBigInt(text.cr.old) }),
    ...(text.cr.new !== undefined && { new: toBigInt(text.cr.new) }),
  };
  const i = text.intercept;
  const intercept = i && {
    ...(i.name !== undefined && { name: i.name }),
    ...(i.msr !== undefined && { msr: toNumber(i.msr) }),
    ...(i.old !== undefined && { old: toBigInt(i.old) }),
    ...(i.new !== undefined && { new: toBigInt(i.new) }),
    ...(i.oldLimit !== undefined && { oldLimit: toNumber(i.oldLimit) }),
    ...(i.newLimit !== undefined && { newLimit: toNumber(i.newLimit) }),
  };
  const mf = text.memory;
  const flags = mf?.flags === undefined ? undefined : resolveMemoryExitFlags(mf.flags, `${path}/memory/flags`, cx);
  const memory = mf && {
    ...(flags !== undefined && { flags }),
    ...(mf.gpa !== undefined && { gpa: toBigInt(mf.gpa) }),
    ...(mf.size !== undefined && { size: toBigInt(mf.size) }),
    ...(mf.gva !== undefined && { gva: toBigInt(mf.gva) }),
  };
  if (reason === undefined) return undefined;
  return {
    reason, ...(msr && { msr }), ...(heki && { heki }), ...(io && { io }), ...(cr && { cr }), ...(intercept && { intercept }), ...(memory && { memory }),
  };
}

export function parseExpect(text: ExpectText, step: StepShape, action: HostAction | undefined, path: string, cx: ParseContext): Expect {
  const add = (key: string, reason: string) => cx.issues.add(`${path}/${key}`, reason);
  for (const key of Object.keys(text) as ExpectKey[]) {
    if (!fits(key, step)) add(key, `cannot be checked on a ${step.op} step (${key} fits: ${FITS[key]!.join(', ')})`);
  }

  const errno = text.errno === undefined ? undefined : errnoProblem(text.errno);
  if (errno !== undefined) add('errno', errno);
  if (text.ok === true && text.errno !== undefined) add('errno', 'contradicts "ok": true — an errno means KVM refused the operation');
  const faults = text.fault !== undefined && text.fault !== null;
  // On a guest step, "ok" says whether the step completed without a fault: "ok": true is "fault": null.
  if (step.kind === 'guest' && text.ok === true && faults) add('ok', 'contradicts "fault": "ok": true means the step completes without a fault');
  if (step.kind === 'guest' && text.ok === false && text.fault === null) add('ok', 'contradicts "fault": null: "ok": false means the step faults');
  if (step.kind === 'guest' && text.ok === true && text.stop === 'fault') add('ok', 'contradicts "stop": "fault"');
  for (const key of ['value', 'ret'] as const) {
    if (faults && text[key] !== undefined) add(key, 'contradicts "fault": a faulting instruction produces no value (PROTOCOL.md §5)');
  }
  if (text.stop === 'fault' && text.fault === null) add('stop', 'contradicts "fault": null');
  if (text.stop !== undefined && text.stop !== 'fault' && faults) add('stop', `contradicts "fault": code that faults stops with "fault", not "${text.stop}"`);
  if (step.op === 'cpuid') {
    for (const r of Object.keys(text.regs ?? {})) if (!CPUID_REGISTERS.includes(r)) add(`regs/${r}`, 'is not written by CPUID (only rax, rbx, rcx, rdx)');
  }
  if (text.msrs !== undefined && action?.op === 'getMsrs') {
    text.msrs.forEach((m, i) => {
      if (!action.indices.includes(toNumber(m.index))) add(`msrs/${i}/index`, 'is not among the MSRs this step reads');
    });
  }

  let ret: bigint | undefined;
  if (text.ret !== undefined) {
    ret = toU64TwosComplement(text.ret);
    if (ret === undefined) add('ret', 'does not fit 64 bits (from -2^63 to 2^64 - 1)');
  }
  const exits = text.exits?.map((e, i) => parseExit(e, `${path}/exits/${i}`, cx));
  return {
    ...(text.ok !== undefined && { ok: text.ok }),
    ...(text.errno !== undefined && isErrnoName(text.errno) && { errno: text.errno }),
    ...(text.value !== undefined && { value: toBigInt(text.value) }),
    ...(ret !== undefined && { ret }),
    ...(text.fault !== undefined && {
      fault: text.fault === null ? null : {
        vector: toNumber(text.fault.vector),
        errorCode: text.fault.errorCode === undefined ? undefined : toNumber(text.fault.errorCode),
      },
    }),
    ...(exits !== undefined && exits.every((e) => e !== undefined) && { exits: exits as ExpectedExit[] }),
    ...(text.regs !== undefined && { regs: parseRegisterValues(text.regs, STOP_REGISTERS) }),
    ...(text.cr !== undefined && { cr: parseRegisterValues(text.cr, CONTROL_REGISTER_NAMES) }),
    ...(text.stop !== undefined && { stop: text.stop }),
    ...(text.nmsrs !== undefined && { nmsrs: text.nmsrs }),
    ...(text.msrs !== undefined && { msrs: text.msrs.map((m) => ({ index: toNumber(m.index), value: toBigInt(m.value) })) }),
  };
}
