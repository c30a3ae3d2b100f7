/**
 * A step's `expect` against what the step did. A key left out of `expect` is not checked;
 * `exits` is the exact ordered list, each exit's omitted keys unchecked; `regs`, `cr` and
 * `msrs` are subsets. Each difference is one Failure at the path of the expectation in the
 * file, with the expected and the actual value as reports show them.
 */
import type { HekiProfileName } from '../../protocol/abi.js';
import { hex } from '../../protocol/notation.js';
import type { ControlRegisterName, ExpectedExit, Expect, MsrEntry } from './model.js';
import type { Failure, Shown } from './results.js';
import { EXIT_PARTS, showExit, showExitField, showFault, showReason } from './show.js';
import type { GuestOutcome, TargetExit } from './target.js';

/** What a host operation did: its result, or KVM's refusal. */
export type HostOutcome =
  | { readonly ok: true; readonly value?: number; readonly nmsrs?: number; readonly entries?: readonly MsrEntry[] }
  | { readonly ok: false; readonly errno: string; readonly message: string };

export interface Observed {
  readonly guest?: GuestOutcome;
  readonly host?: HostOutcome;
  /** Read after the step when `expect.cr` asks. */
  readonly cr?: Readonly<Record<ControlRegisterName, bigint>>;
}

class Mismatches {
  readonly failures: Failure[] = [];
  constructor(
    private readonly step: number,
    private readonly base: string,
  ) {}

  add(path: string, expected: Shown, actual: Shown, message: string): void {
    this.failures.push({ kind: 'mismatch', step: this.step, path: this.base + path, expected, actual, message });
  }

  /** Adds a failure unless the two are equal; labels like "value", "exits[0].msr.data". */
  same(path: string, label: string, expected: bigint | number | string, actual: bigint | number | string | undefined, show = showValue): void {
    if (actual !== undefined && (typeof expected === 'bigint' || typeof actual === 'bigint' ? BigInt(expected) === BigInt(actual) : expected === actual)) return;
    const a = actual === undefined ? null : show(actual);
    this.add(path, show(expected), a, `${label}: expected ${String(show(expected))}, got ${a === null ? 'nothing' : String(a)}`);
  }
}

function showValue(v: bigint | number | string): Shown {
  return typeof v === 'string' ? v : hex(v);
}

function refusal(host: HostOutcome): string {
  return host.ok ? 'it succeeded' : `KVM refused it with ${host.errno} (${host.message})`;
}

function compareHost(expect: Expect, host: HostOutcome, m: Mismatches): void {
  if (expect.ok === true && !host.ok) m.add('/ok', true, false, `expected the operation to succeed, but ${refusal(host)}`);
  if (expect.ok === false && host.ok) m.add('/ok', false, true, 'expected KVM to refuse the operation, but it succeeded');
  if (expect.errno !== undefined && (host.ok || host.errno !== expect.errno)) {
    const actual = host.ok ? 'success' : host.errno;
    m.add('/errno', expect.errno, actual, `errno: expected ${expect.errno}, but ${refusal(host)}`);
  }
  const result = host.ok ? host : undefined;
  if (expect.value !== undefined) m.same('/value', 'value', expect.value, result?.value);
  if (expect.nmsrs !== undefined) m.same('/nmsrs', 'nmsrs', expect.nmsrs, result?.nmsrs, (v) => Number(v));
  expect.msrs?.forEach((want, i) => {
    const got = result?.entries?.find((e) => e.index === want.index);
    m.same(`/msrs/${i}/value`, `MSR ${hex(want.index)}`, want.value, got?.value);
  });
}

function compareExit(profile: HekiProfileName, want: ExpectedExit, got: TargetExit, i: number, m: Mismatches): void {
  const at = `/exits/${i}`;
  m.same(`${at}/reason`, `exits[${i}].reason`, want.reason, got.reason, (v) => showReason(profile, Number(v)));
  for (const part of EXIT_PARTS) {
    const w = want[part] as Readonly<Record<string, bigint | number | string | undefined>> | undefined;
    if (w === undefined) continue;
    const g = got[part] as Readonly<Record<string, bigint | number | string>> | undefined;
    if (g === undefined) {
      m.add(`${at}/${part}`, showExit(profile, want), showExit(profile, got), `exits[${i}]: expected ${part} details, the exit has none`);
      continue;
    }
    for (const [key, value] of Object.entries(w)) {
      if (value === undefined) continue;
      m.same(`${at}/${part}/${key}`, `exits[${i}].${part}.${key}`, value, g[key], (v) => showExitField(part, key, v));
    }
  }
}

function compareGuest(profile: HekiProfileName, expect: Expect, guest: GuestOutcome, m: Mismatches): void {
  const faulted = guest.fault !== undefined;
  // "ok" on a guest step: completed without a fault (the same as "fault": null), or faulted.
  if (expect.ok === true && faulted) m.add('/ok', true, false, `expected the step to complete without a fault, but the guest took ${showFault(guest.fault)}`);
  if (expect.ok === false && !faulted) m.add('/ok', false, true, 'expected the step to fault, but it completed without one');
  for (const key of ['value', 'ret'] as const) {
    const want = expect[key];
    if (want === undefined) continue;
    if (faulted) m.add(`/${key}`, hex(want), showFault(guest.fault), `${key}: expected ${hex(want)}, but the guest took ${showFault(guest.fault)}`);
    else m.same(`/${key}`, key, want, guest[key]);
  }
  if (expect.fault === null && faulted) {
    m.add('/fault', null, showFault(guest.fault), `expected no fault, but the guest took ${showFault(guest.fault)}`);
  } else if (expect.fault) {
    const want = expect.fault;
    const g = guest.fault;
    const differs = g === undefined || g.vector !== want.vector || (want.errorCode !== undefined && g.errorCode !== want.errorCode);
    if (differs) m.add('/fault', showFault(want), showFault(g), `fault: expected ${showFault(want)}, got ${showFault(g)}`);
  }
  if (expect.exits !== undefined) {
    if (expect.exits.length !== guest.exits.length) {
      const want = expect.exits.map((e) => showExit(profile, e));
      const got = guest.exits.map((e) => showExit(profile, e));
      m.add('/exits', want, got, `exits: expected ${want.length}, got ${got.length}: ${JSON.stringify(got)}`);
    } else {
      expect.exits.forEach((want, i) => compareExit(profile, want, guest.exits[i]!, i, m));
    }
  }
  if (expect.stop !== undefined) m.same('/stop', 'stop', expect.stop, guest.stop);
  for (const [reg, want] of Object.entries(expect.regs ?? {})) {
    if (want !== undefined) m.same(`/regs/${reg}`, reg, want, guest.regs?.[reg as keyof typeof guest.regs]);
  }
}

/** Every difference between `expect` and what was observed; [] when the step passed. */
export function compareStep(
  profile: HekiProfileName,
  step: number,
  expectPath: string,
  expect: Expect,
  observed: Observed,
): Failure[] {
  const m = new Mismatches(step, expectPath);
  if (observed.host !== undefined) compareHost(expect, observed.host, m);
  if (observed.guest !== undefined) compareGuest(profile, expect, observed.guest, m);
  for (const [cr, want] of Object.entries(expect.cr ?? {})) {
    if (want !== undefined) m.same(`/cr/${cr}`, cr, want, observed.cr?.[cr as ControlRegisterName]);
  }
  return m.failures;
}

/**
 * What a step did, in the fields its `expect` looks at — and always whether a host operation
 * succeeded (its errno if not), and a guest action's fault and exits — as reports show them:
 * the two backends' results `--diff` puts side by side. Values the expectation does not name
 * are left out: a TSC read or a CPUID leaf differs between any two hosts and says nothing.
 */
export function observedShown(profile: HekiProfileName, expect: Expect, observed: Observed): Shown {
  const out: Record<string, Shown> = {};
  const host = observed.host;
  if (host !== undefined) {
    out.ok = host.ok;
    if (!host.ok) out.errno = host.errno;
    else {
      if (expect.value !== undefined && host.value !== undefined) out.value = hex(host.value);
      if (expect.nmsrs !== undefined && host.nmsrs !== undefined) out.nmsrs = host.nmsrs;
      if (expect.msrs !== undefined) out.msrs = (host.entries ?? []).map((e) => ({ index: hex(e.index), value: hex(e.value) }));
    }
  }
  const guest = observed.guest;
  if (guest !== undefined) {
    out.fault = guest.fault === undefined ? null : showFault(guest.fault);
    if (expect.value !== undefined && guest.value !== undefined) out.value = hex(guest.value);
    if (expect.ret !== undefined && guest.ret !== undefined) out.ret = hex(guest.ret);
    out.exits = guest.exits.map((e) => showExit(profile, e));
    if (guest.stop !== undefined) out.stop = guest.stop;
    const regs: Record<string, Shown> = {};
    for (const reg of Object.keys(expect.regs ?? {})) {
      const v = guest.regs?.[reg as keyof typeof guest.regs];
      regs[reg] = v === undefined ? null : hex(v);
    }
    if (Object.keys(regs).length > 0) out.regs = regs;
  }
  const cr: Record<string, Shown> = {};
  for (const name of Object.keys(expect.cr ?? {})) {
    const v = observed.cr?.[name as ControlRegisterName];
    cr[name] = v === undefined ? null : hex(v);
  }
  if (Object.keys(cr).length > 0) out.cr = cr;
  return out;
}
