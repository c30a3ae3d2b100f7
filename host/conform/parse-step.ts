/** One step, as written, to model.ts's Step: its action, its `vmm` answer and its `expect`. */
import type { StepText } from './document.js';
import { toBigInt, toNumber } from './integers.js';
import { DEFAULT_MSR_EXIT_ANSWER, DEFAULT_PINBOX_ANSWER, type HostOp, type MsrExitAnswer, type PinboxAnswer, type Step } from './model.js';
import { vcpuOf, type ParseContext } from './parse-context.js';
import { parseExpect } from './parse-expect.js';
import { parseGuestAction } from './parse-guest.js';
import { parseHostAction } from './parse-host.js';

/** Where a step sits: at the top level, or inside another step's `vmm.duringExit`. */
export interface StepPlace {
  readonly path: string;
  /** The vCPU that sits in the exit, for a step run during one. */
  readonly inExitOf: number | undefined;
}

function parseAnswer(text: NonNullable<StepText['vmm']>['msr']): MsrExitAnswer {
  if (text === undefined) return DEFAULT_MSR_EXIT_ANSWER;
  if (text === 'untouched') return 'untouched';
  return { error: toNumber(text.error), data: text.data === undefined ? 0n : toBigInt(text.data) };
}

function parsePinboxAnswer(text: NonNullable<StepText['vmm']>['cr']): PinboxAnswer {
  if (text === undefined) return DEFAULT_PINBOX_ANSWER;
  return {
    action: text.action,
    ...(text.value !== undefined && { value: toBigInt(text.value) }),
    ...(text.limit !== undefined && { limit: toNumber(text.limit) }),
  };
}

export function parseStep(text: StepText, place: StepPlace, cx: ParseContext): Step | undefined {
  const { path } = place;
  const note = text.note;
  if (text.host !== undefined) {
    if (text.vmm !== undefined) cx.issues.add(`${path}/vmm`, 'only a guest step causes exits for user space to answer');
    const action = parseHostAction(text.host, `${path}/host`, cx);
    if (place.inExitOf !== undefined && (action?.op === 'snapshot' || action?.op === 'restore')) {
      cx.issues.add(`${path}/host`, `cannot ${action.op} while vCPU ${place.inExitOf} is in an exit: the exit's state is the VMM's, not the VM's`);
    }
    const op = Object.keys(text.host)[0] as HostOp | undefined;
    const expect = op === undefined ? {} : parseExpect(text.expect, { kind: 'host', op }, action, `${path}/expect`, cx);
    return action === undefined ? undefined : { kind: 'host', path, note, action, expect };
  }
  if (text.guest === undefined) return undefined; // the schema has reported it

  const guest = text.guest;
  const vcpu = vcpuOf(guest.vcpu, `${path}/guest/vcpu`, cx);
  if (place.inExitOf === vcpu) {
    cx.issues.add(`${path}/guest/vcpu`, `vCPU ${vcpu} is the one in the exit; a step during the exit must use another vCPU`);
  }
  const action = parseGuestAction(guest, `${path}/guest`, cx);
  const duringExit: Step[] = [];
  const nested = text.vmm?.duringExit;
  if (nested !== undefined) {
    if (place.inExitOf !== undefined) {
      cx.issues.add(`${path}/vmm/duringExit`, 'a step run during an exit cannot have steps of its own during an exit');
    } else {
      nested.forEach((n, i) => {
        const step = parseStep(n, { path: `${path}/vmm/duringExit/${i}`, inExitOf: vcpu }, cx);
        if (step !== undefined) duringExit.push(step);
      });
    }
  }
  if (action === undefined) return undefined; // the schema or the action's checks have reported it
  const expect = parseExpect(text.expect, { kind: 'guest', op: action.op }, undefined, `${path}/expect`, cx);
  return {
    kind: 'guest',
    path,
    note,
    vcpu,
    cpl: guest.cpl ?? 0,
    action,
    answer: parseAnswer(text.vmm?.msr),
    crAnswer: parsePinboxAnswer(text.vmm?.cr),
    interceptAnswer: parsePinboxAnswer(text.vmm?.intercept),
    duringExit,
    expect,
  };
}
