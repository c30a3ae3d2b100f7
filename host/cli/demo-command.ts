/**
 * `pinbox demo`: the hardened-guest example (examples/harden.ts) against a VMM in this process,
 * told for someone who has never seen pinbox — what a pin is, what the guest and the attacker
 * did, what KVM and the VMM did about it — and what that showed. Exits 0 when every
 * protection held.
 */
import { hardenGuest, hardenPolicy } from '../../examples/harden.js';
import crHardening from '../../examples/policies/cr-hardening.json' with { type: 'json' };
import { exampleHost } from '../../examples/shared/example-host.js';
import { printedStory } from '../../examples/shared/story.js';
import { vmmWords } from '../../examples/shared/vmm-words.js';
import { auditPolicy, summaryOutcome } from '../conform/audit/run-audit.js';
import type { Event } from '../vmm/events/index.js';
import { parsePolicy } from '../vmm/policy/index.js';
import type { ParsedCommand } from './args.js';
import { cliBackend } from './backend-option.js';
import { liveMonitor } from './demo-monitor.js';
import type { Output } from './output.js';

const INTRO = [
  'pinbox demo: a guest kernel pins its control registers with Heki, then an attacker tries to undo it.',
  '',
  'pinbox runs each guest action below as the real x86-64 instruction (VMCALL, MOV to CR4, RDMSR...) on a ' +
    'modelled CPU, under a model of KVM with Heki CR pinning (RFC v2) and MSR filtering. This process plays ' +
    'the guest (through the guest SDK and the wire protocol) and the VMM (with examples/policies/harden.json).',
  '',
  'A pin is a control-register bit the guest kernel asks the hypervisor to hold on, for good: CR0.WP keeps ' +
    'read-only kernel memory read-only, CR4.SMEP and SMAP keep ring 0 from running and reading user pages. Once ' +
    'a bit is pinned, KVM refuses any write that would clear it with #GP — even from kernel code an attacker ' +
    'controls — until the VMM resets the VM.',
];

/** The attacks the comparison shows, by the audit's path names (docs/transitions.md). */
const ATTACKS = [
  ['mov-cr', 'clear CR0.WP, SMEP or SMAP with MOV to CR'],
  ['lgdt-lidt', 'load a GDT or IDT of its own (LGDT/LIDT)'],
  ['set-sregs', 'the host loads the registers (KVM_SET_SREGS)'],
] as const;

const OUTCOME_WORDS: Readonly<Record<string, string>> = {
  holds: 'refused by KVM (#GP)',
  asks: 'user space is asked first (here the policy answers deny; below, a monitor decides)',
  bypassed: 'gets past, unseen',
  dropped: 'the protection is gone',
  '—': 'cannot protect that',
};

/**
 * The same attacks against each CR-hardening mechanism, from the audit of
 * examples/policies/cr-hardening.json — each run on scratch VMs, not a hand-written list.
 */
async function sideBySide(story: ReturnType<typeof printedStory>): Promise<void> {
  story.text('');
  story.text('The same attacks against every CR-hardening mechanism pinbox models (examples/policies/cr-hardening.json, run on scratch VMs of the KVM model; docs/transitions.md has every path):');
  const report = await auditPolicy(parsePolicy(crHardening, 'cr-hardening.json'));
  for (const m of report.mechanisms) {
    const said = ATTACKS.map(([path, label]) => {
      const row = m.rows.find((r) => r.path === path);
      const outcome = row === undefined ? '—' : summaryOutcome(row);
      return `${label}: ${outcome.split(', ').map((o) => OUTCOME_WORDS[o] ?? o).join(' / ')}`;
    });
    story.bullet(`${m.label} — ${said.join('; ')}.`);
  }
}

export async function demoCommand(args: ParsedCommand, io: Output): Promise<number> {
  const support = await cliBackend(args, io, 'demo');
  if (support === undefined) return 1;
  const story = printedStory((t) => io.out(t));
  for (const line of INTRO) story.text(line);
  if (support.backend.name !== 'model') {
    story.text('');
    story.text(`--backend kvm: here the VMM drives this machine's /dev/kvm instead (${support.host.summary}); KVM's answers below are that kernel's. ` +
      `Heki: ${support.heki.v2.present ? 'present' : `absent (${support.heki.v2.detail})`}.`);
  }
  const recorded: Event[] = [];
  const host = exampleHost(hardenPolicy, { support }, {
    onEvent: (e) => {
      recorded.push(e);
      const words = vmmWords(e);
      if (words !== undefined) story.vmm(words);
    },
  });
  try {
    let report: Awaited<ReturnType<typeof hardenGuest>>;
    try {
      report = await hardenGuest(host, story);
    } catch (e) {
      // A host without what the demo needs (Heki; CPL0 hypercalls at all) says so: nothing held, nothing was shown.
      if ((e as { code?: unknown } | null)?.code !== 'host_unsupported') throw e;
      story.text('');
      story.text(`This host cannot run the demo: ${(e as Error).message}. Nothing was pinned, so nothing could hold; see docs/real-kvm.md, or run the demo on the model (--backend model).`);
      return 1;
    }
    const count = (name: string, path?: string): number => recorded.filter((e) => e.name === name && (path === undefined || e.fields.path === path)).length;
    story.text('');
    story.text('What this showed');
    const lines = [
      `${report.locked ? 'The guest pinned' : 'The guest could NOT pin'} CR0.WP and its CR4 protections with KVM_HC_LOCK_CR_UPDATE; the pins hold for every vCPU of the VM.`,
      `${report.attempts.filter((a) => a.blocked).length} of ${report.attempts.length} attempts to clear a pinned bit were refused with #GP(0), and the registers kept their values.`,
      `KVM reported each pin and each refusal to the VMM (KVM_EXIT_HEKI_CONFIGURE, KVM_EXIT_HEKI_DENIAL): its event log holds ${count('heki_configure')} heki_configure and ${count('heki_denial')} heki_denial events — what a control client subscribes to, or a trace file (pinbox serve --trace) keeps.`,
      `The MSR filter sent ${count('msr_exit_reply')} MSR accesses to the VMM, whose policy answered them: the guest read the value the VMM gave, or took #GP where the policy refused.`,
    ];
    for (const l of lines) story.bullet(l);
    await sideBySide(story);
    const monitorHeld = await liveMonitor(story);
    story.text('');
    story.text('Next: pinbox serve --listen unix:/tmp/pinbox.sock --control unix:/tmp/pinbox.ctl --policy examples/policies/harden.json, then node dist/examples/harden.js --host unix:/tmp/pinbox.sock; node dist/examples/smep-bypass.js shows the exploit these pins stop. See README.md.');
    return report.held && monitorHeld ? 0 : 1;
  } finally {
    host.close();
  }
}
