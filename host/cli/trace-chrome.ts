/**
 * A trace in the Chrome trace-event JSON format, which Perfetto (ui.perfetto.dev) and
 * chrome://tracing open: `{"traceEvents": [...], "displayTimeUnit": "ns"}`, each event with
 * `name`, `ph` (phase), `ts` (microseconds), `pid`, `tid` and `args`.
 *
 * - Each VM is a process (pid 1, 2… in the order VMs appear; the VMM itself is pid 0), each of
 *   its vCPUs a thread (tid = vCPU number), named by `process_name` / `thread_name` metadata.
 * - Each VM exit is a slice on its vCPU (`ph: "X"`, named `exit MSR_READ`), from its kvm_exit to
 *   the last event that belongs to it (everything on the vCPU before the next kvm_exit); the
 *   part handled in user space is a slice nested inside it (`user space KVM_EXIT_X86_RDMSR`),
 *   from kvm_userspace_exit to the end of the exit.
 * - Every other event is an instant (`ph: "i"`) on its vCPU's thread, or across its VM's
 *   process (`s: "p"`) for an event of no vCPU; `args` are its fields as docs/events.md writes
 *   them (and `seq`, `rip`).
 */
import { encodeEventLine, VMM_EVENTS, type Event } from '../../protocol/events/index.js';

interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  s?: 't' | 'p';
  cat?: string;
  args: Record<string, unknown>;
}

/** Nanoseconds to the format's microseconds. */
function us(ns: bigint): number {
  return Number(ns) / 1000;
}

/** An event's fields as JSON, by the one rule (docs/events.md), with its seq and RIP. */
function args(e: Event): Record<string, unknown> {
  const { seq, rip, fields } = JSON.parse(encodeEventLine(e)) as { seq: unknown; rip?: unknown; fields: Record<string, unknown> };
  return { seq, ...(rip !== undefined && { rip }), ...fields };
}

interface OpenExit {
  readonly slice: TraceEvent;
  user: TraceEvent | undefined;
  end: number;
}

export function chromeTrace(events: readonly Event[]): { traceEvents: TraceEvent[]; displayTimeUnit: 'ns' } {
  const out: TraceEvent[] = [];
  const pids = new Map<string, number>([[VMM_EVENTS, 0]]);
  const threads = new Set<string>();
  const open = new Map<string, OpenExit>();

  const pidOf = (vm: string): number => {
    let pid = pids.get(vm);
    if (pid === undefined) {
      pid = pids.size;
      pids.set(vm, pid);
      out.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: `VM "${vm}"` } });
      out.push({ name: 'process_sort_index', ph: 'M', ts: 0, pid, tid: 0, args: { sort_index: pid } });
    }
    return pid;
  };
  const close = (key: string): void => {
    const exit = open.get(key);
    if (exit === undefined) return;
    exit.slice.dur = exit.end - exit.slice.ts;
    if (exit.user !== undefined) exit.user.dur = exit.end - exit.user.ts;
    open.delete(key);
  };

  out.push({ name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'pinbox VMM' } });
  for (const e of events) {
    const pid = pidOf(e.vm);
    const ts = us(e.time);
    if (e.vcpu === undefined) {
      out.push({ name: e.name, ph: 'i', s: 'p', ts, pid, tid: 0, cat: 'vm', args: args(e) });
      continue;
    }
    const tid = e.vcpu;
    const key = `${pid}/${tid}`;
    if (!threads.has(key)) {
      threads.add(key);
      out.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: `vCPU ${tid}` } });
    }
    if (e.name === 'kvm_exit') {
      close(key);
      const slice: TraceEvent = { name: `exit ${String(e.fields.exit_reason)}`, ph: 'X', ts, dur: 0, pid, tid, cat: 'exit', args: args(e) };
      out.push(slice);
      open.set(key, { slice, user: undefined, end: ts });
      continue;
    }
    const exit = open.get(key);
    if (exit !== undefined) exit.end = ts;
    if (e.name === 'kvm_userspace_exit' && exit !== undefined && exit.user === undefined) {
      exit.user = { name: `user space ${String(e.fields.reason)}`, ph: 'X', ts, dur: 0, pid, tid, cat: 'user space', args: args(e) };
      out.push(exit.user);
      continue;
    }
    out.push({ name: e.name, ph: 'i', s: 't', ts, pid, tid, cat: e.name.startsWith('kvm_') ? 'kvm' : 'vmm', args: args(e) });
  }
  for (const key of [...open.keys()]) close(key);
  return { traceEvents: out, displayTimeUnit: 'ns' };
}
