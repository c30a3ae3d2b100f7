/**
 * A hardened guest: it locks its control registers as a Heki guest kernel does at the end of
 * its boot, checks the lock, and then plays the attacker — kernel code execution trying to
 * turn SMEP and CR0.WP off — and surveys the MSRs its policy filters.
 *
 *   node dist/examples/harden.js                      # with a VMM in this process
 *   node dist/examples/harden.js --host unix:/tmp/pinbox.sock
 *                                  # against `pinbox serve --policy examples/policies/harden.json ...`
 *
 * `pinbox demo` runs this example. Exits 0 when every protection held.
 */
import { describeFault, type Fault, type Guest } from '../guest-sdk/index.js';
import { HEKI_CR4_PINNABLE_MASK_V2, X86_CR0_TS, X86_CR0_WP, X86_CR4_SMEP } from '../protocol/abi.js';
import { hex } from '../protocol/notation.js';
import policy from './policies/harden.json' with { type: 'json' };
import { exampleArguments, exampleHost, isMain, runMain, type ExampleHost } from './shared/example-host.js';
import { printedStory, type Story } from './shared/story.js';
import { bitNames, vmmWords } from './shared/vmm-words.js';

export { policy as hardenPolicy };

export interface Attempt {
  readonly what: string;
  readonly blocked: boolean;
  readonly fault: Fault | undefined;
}

export interface HardenReport {
  /** Both pins were accepted. */
  readonly locked: boolean;
  readonly pins: readonly { readonly cr: 0 | 4; readonly pin: bigint }[];
  readonly attempts: readonly Attempt[];
  /** Every protection held: locked, and every bypass refused with a fault. */
  readonly held: boolean;
}

/** The MSRs the policy's filter covers, and their neighbours (the syscall MSRs). */
const PROBED: [number, number][] = [[0x35, 0x35], [0xc0000080, 0xc0000084]];
const MSR_NAMES: Readonly<Record<number, string>> = {
  0x35: 'MSR_CORE_THREAD_COUNT', 0xc0000080: 'EFER', 0xc0000081: 'STAR', 0xc0000082: 'LSTAR', 0xc0000083: 'CSTAR', 0xc0000084: 'SFMASK',
};

async function attack(guest: Guest, story: Story, what: string, cr: 0 | 4, value: bigint): Promise<Attempt> {
  const before = await guest.readCr(cr);
  story.guest(`mov cr${cr}, ${hex(value)}`);
  const r = await guest.writeCrSafe(cr, value);
  const after = await guest.readCr(cr);
  if (r.ok) {
    story.guest(`→ the write went through: CR${cr} is now ${hex(after)}. The protection is gone.`);
    return { what, blocked: false, fault: undefined };
  }
  story.guest(`→ ${describeFault(r.fault)}: the write was refused, CR${cr} is still ${hex(after)}${after === before ? '' : ' (changed?)'}.`);
  return { what, blocked: true, fault: r.fault };
}

/** One KVM_HC_LOCK_CR_UPDATE of the lock-down, told as it happens. */
async function pin(guest: Guest, story: Story, cr: 0 | 4, bits: bigint): Promise<boolean> {
  story.guest(`VMCALL KVM_HC_LOCK_CR_UPDATE(${cr}, ${hex(bits)}): pin CR${cr} ${bitNames(cr, bits)}`);
  const r = await guest.heki.lockCr(cr, bits);
  story.guest(r.ok ? '→ accepted (RAX 0)' : `→ refused: ${r.errno === undefined ? hex(r.ret) : `-KVM_${r.errno}`}`);
  return r.ok;
}

export async function hardenGuest(host: ExampleHost, story: Story): Promise<HardenReport> {
  const guest = await host.guest({ vcpu: 0 });
  const attempts: Attempt[] = [];

  story.step('Does the hypervisor support Heki CR pinning?');
  const version = await guest.heki.version();
  story.guest(
    version.supported
      ? `VMCALL KVM_HC_LOCK_CR_UPDATE(0, 0, KVM_LOCK_CR_UPDATE_VERSION) returned ${version.version}: yes, version ${version.version}.`
      : `the version query returned ${version.version}${version.errno ? ` (-KVM_${version.errno})` : ''}: no Heki here.`,
  );

  story.step('Lock down, as a Heki guest kernel does at the end of its boot (heki_late_init → kvm_lock_crs): CR0.WP, then the CR4 protections it has on.');
  const pins: { cr: 0 | 4; pin: bigint }[] = [];
  let locked = version.supported && (await pin(guest, story, 0, X86_CR0_WP));
  if (locked) pins.push({ cr: 0, pin: X86_CR0_WP });
  const cr4Now = await guest.readCr(4);
  const cr4Pin = cr4Now & HEKI_CR4_PINNABLE_MASK_V2;
  if (locked) {
    story.guest(`CR4 is ${hex(cr4Now)}; of the bits a guest may pin (SMEP SMAP UMIP FSGSBASE CET) it has ${bitNames(4, cr4Pin)} on`);
    locked = await pin(guest, story, 4, cr4Pin);
    if (locked) pins.push({ cr: 4, pin: cr4Pin });
  }

  const cr4 = await guest.readCr(4);
  story.step(`An attacker with kernel code execution turns SMEP off — mov cr4, ${hex(cr4 & ~X86_CR4_SMEP)} — so that kernel code may run a user page (ret2usr).`);
  attempts.push(await attack(guest, story, 'clear CR4.SMEP', 4, cr4 & ~X86_CR4_SMEP));

  // A second vCPU, if the VM has one (the guest's hello is refused otherwise).
  const other = await host.guest({ vcpu: 1 }).catch(() => undefined);
  const wpGuest = other ?? guest;
  const cr0 = await wpGuest.readCr(0);
  story.step(
    `It turns CR0.WP off — mov cr0, ${hex(cr0 & ~X86_CR0_WP)} — to write to read-only kernel memory` +
      (other !== undefined ? ', this time from vCPU 1: the pins hold for every vCPU of the VM.' : '.'),
  );
  attempts.push(await attack(wpGuest, story, 'clear CR0.WP', 0, cr0 & ~X86_CR0_WP));

  story.step('Bits nobody pinned still change: the kernel sets and clears CR0.TS at every FPU switch.');
  await guest.lmsw(Number((cr0 | X86_CR0_TS) & 0xffffn));
  story.guest(`LMSW set TS (CR0 ${hex(await guest.readCr(0))}); CLTS`);
  const clts = await guest.cltsSafe();
  story.guest(clts.ok ? `→ went through: CR0 is ${hex(await guest.readCr(0))}, TS clear.` : `→ ${describeFault(clts.fault)}.`);

  story.step('The MSRs the policy filters, as the guest finds them: an MSR probe reads each, then writes back what it read (the VMM answers the filtered ones as they come; the guest\'s findings follow).');
  const probe = await guest.probeMsrs(PROBED);
  for (const m of probe.msrs) {
    const name = MSR_NAMES[m.index] ?? hex(m.index);
    const read = m.read.ok ? `reads ${hex(m.read.value)}` : `RDMSR raises ${describeFault(m.read.fault)}`;
    const write = m.write === undefined ? 'not written' : m.write.ok ? 'writable' : `WRMSR raises ${describeFault(m.write.fault)}`;
    const exits = m.read.exits.length + (m.write?.exits.length ?? 0);
    story.guest(`${hex(m.index)} ${name}: ${m.class} — ${read}, ${write}${exits > 0 ? ` (${exits} exit${exits > 1 ? 's' : ''} to the VMM)` : ''}.`);
  }
  const summary = Object.entries(probe.counts).filter(([, n]) => n > 0).map(([c, n]) => `${n} ${c}`).join(', ');
  story.guest(`summary: ${probe.msrs.length} MSRs probed: ${summary}.`);

  const held = locked && attempts.every((a) => a.blocked);
  return { locked, pins, attempts, held };
}

async function main(): Promise<number> {
  const where = await exampleArguments(process.argv.slice(2), 'harden');
  const write = (t: string): void => void process.stdout.write(t);
  const story = printedStory(write);
  const host = exampleHost(policy, where, {
    onEvent: (e) => {
      const words = vmmWords(e);
      if (words !== undefined) story.vmm(words);
    },
    onAttached: (text) => story.text(text),
  });
  story.text(`harden: a guest kernel locks its control registers, then tries to undo it; the guests run on ${host.description}.`);
  try {
    const report = await hardenGuest(host, story);
    story.text(`\n${report.held ? 'Every protection held' : 'A protection did NOT hold'}: ${report.pins.length} pins, ${report.attempts.filter((a) => a.blocked).length} of ${report.attempts.length} bypasses refused.`);
    return report.held ? 0 : 1;
  } finally {
    host.close();
  }
}

if (isMain('harden')) runMain(main);
