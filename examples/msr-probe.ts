/**
 * An MSR survey from inside the guest: RDMSR of every MSR in a few ranges, then a WRMSR of the
 * value read, classified as writable / readable / write-only / faulting and summarised as
 * ranges — what a guest sees of the host's MSR table, MSR filter and user-space exit policy.
 * The policy (policies/msr-probe.json) filters some MSRs; the VMM answers those exits.
 *
 *   node dist/examples/msr-probe.js [--host unix:PATH|tcp:HOST:PORT]
 */
import type { MsrProbeReport } from '../guest-sdk/index.js';
import { hex } from '../protocol/notation.js';
import policy from './policies/msr-probe.json' with { type: 'json' };
import { exampleArguments, exampleHost, isMain, runMain, type ExampleHost } from './shared/example-host.js';
import { printedStory, type Story } from './shared/story.js';

export { policy as msrProbePolicy };

/** Architectural MSRs at the bottom, the thread count QEMU emulates, the syscall and segment-base MSRs. */
export const PROBE_RANGES: [number, number][] = [[0x0, 0x3f], [0xc0000080, 0xc0000084], [0xc0000100, 0xc0000103]];

export interface ProbeOutcome {
  readonly report: MsrProbeReport;
  /** MSRs whose probe reached the VMM (user-space exits), by index. */
  readonly exited: readonly number[];
}

export async function probe(host: ExampleHost, story: Story): Promise<ProbeOutcome> {
  const guest = await host.guest();
  story.step(`Probe ${PROBE_RANGES.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join(', ')}: RDMSR each, then WRMSR of the value read.`);
  const report = await guest.probeMsrs(PROBE_RANGES);
  for (const r of report.ranges) {
    const span = r.first === r.last ? hex(r.first) : `${hex(r.first)}-${hex(r.last)}`;
    story.guest(`${span.padEnd(23)} ${r.class} (${r.count})`);
  }
  const exited = report.msrs.filter((m) => m.read.exits.length + (m.write?.exits.length ?? 0) > 0).map((m) => m.index);
  story.step('Which of them reached the VMM (user-space MSR exits), and what the guest got:');
  for (const m of report.msrs.filter((x) => exited.includes(x.index))) {
    const exits = [...m.read.exits, ...(m.write?.exits ?? [])]
      .map((e) => `${e.reason === 'KVM_EXIT_X86_RDMSR' ? 'read' : 'write'} ${e.msr!.reason} → error ${e.msr!.error}${e.reason === 'KVM_EXIT_X86_RDMSR' && e.msr!.error === 0 ? `, data ${hex(e.msr!.data)}` : ''}`)
      .join('; ');
    story.guest(`${hex(m.index)}: ${m.class} — ${exits}`);
  }
  const c = report.counts;
  story.guest(`summary: ${report.msrs.length} MSRs: ${c.writable} writable, ${c.readable} readable, ${c['write-only']} write-only, ${c.faulting} faulting; ${exited.length} handled by the VMM.`);
  return { report, exited };
}

async function main(): Promise<number> {
  const where = await exampleArguments(process.argv.slice(2), 'msr-probe');
  const story = printedStory((t) => void process.stdout.write(t));
  const host = exampleHost(policy, where, { onAttached: (text) => story.text(text) });
  story.text(`msr-probe: what the guest finds of the MSRs; the guest runs on ${host.description}.`);
  try {
    await probe(host, story);
    return 0;
  } finally {
    host.close();
  }
}

if (isMain('msr-probe')) runMain(main);
