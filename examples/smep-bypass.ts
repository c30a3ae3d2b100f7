/**
 * An exploit-style guest: kernel code execution turns SMEP off and runs a page the user owns
 * at CPL0 (ret2usr). Run twice, on two VMs: with the pins off, the CR4 write goes through and
 * the user page runs in ring 0; with Heki pins on, the same CR4 write raises #GP and the VMM
 * records the denial. The paging model is what makes the difference visible: with SMEP on, a
 * supervisor fetch from a user page is a #PF before any code runs.
 *
 *   node dist/examples/smep-bypass.js [--host unix:PATH|tcp:HOST:PORT]
 *
 * Exits 0 when the exploit works without pins and fails with them.
 */
import { describeFault, type ExecResult, type Guest } from '../guest-sdk/index.js';
import { X86_CR4_SMEP } from '../protocol/abi.js';
import { hex } from '../protocol/notation.js';
import policy from './policies/smep-bypass.json' with { type: 'json' };
import { exampleArguments, exampleHost, isMain, runMain, type ExampleHost } from './shared/example-host.js';
import { printedStory, type Story } from './shared/story.js';
import { vmmWords } from './shared/vmm-words.js';

export { policy as smepBypassPolicy };

/**
 * The payload, planted by a CPL3 "process" in its own memory, 4 KiB past its own code:
 *   lea rdi, [rip + 0x1000] ; mov dword [rdi], 0xc3c0200f
 * The dword is `0f 20 c0 c3`: mov rax, cr0 ; ret — an instruction only ring 0 may run.
 */
const PLANT = Uint8Array.of(0x48, 0x8d, 0x3d, 0x00, 0x10, 0x00, 0x00, 0xc7, 0x07, 0x0f, 0x20, 0xc0, 0xc3);
/** call rdi — the kernel jumping to the user page (what a hijacked function pointer does). */
const CALL_PAYLOAD = Uint8Array.of(0xff, 0xd7);
/** mov rax, cr4 ; btr rax, 20 (SMEP) ; mov cr4, rax ; call rdi */
const EXPLOIT = Uint8Array.of(0x0f, 0x20, 0xe0, 0x48, 0x0f, 0xba, 0xf0, 0x14, 0x0f, 0x22, 0xe0, 0xff, 0xd7);

export interface BypassOutcome {
  /** Pins off: the payload ran at CPL0 (read CR0). */
  readonly bypassedWithoutPins: boolean;
  /** Pins on: the CR4 write raised #GP(0), SMEP still on. */
  readonly blockedWithPins: boolean;
  readonly unpinned: ExecResult;
  readonly pinned: ExecResult;
}

async function plantPayload(guest: Guest, story: Story): Promise<bigint> {
  const planted = await guest.exec(PLANT, { cpl: 3 });
  const payload = planted.regs.rdi;
  story.guest(`a CPL3 process writes "mov rax, cr0; ret" into its own page at ${hex(payload)} (user, executable)`);
  const direct = await guest.exec(Uint8Array.of(0xff, 0xd7), { cpl: 3, regs: { rdi: payload } });
  story.guest(`run at CPL3 the payload is harmless: ${direct.fault === undefined ? `it returned ${hex(direct.regs.rax)}?` : `MOV from CR0 raises ${describeFault(direct.fault)}`}`);
  return payload;
}

function ranInRing0(r: ExecResult): boolean {
  return r.stop === 'end' && r.regs.rax !== 0n;
}

export async function smepBypass(host: ExampleHost, story: Story): Promise<BypassOutcome> {
  story.step('Without pins (VM "unpinned"). First, SMEP doing its job:');
  const a = await host.guest({ vm: 'unpinned' });
  const payloadA = await plantPayload(a, story);
  const smepOn = await a.exec(CALL_PAYLOAD, { regs: { rdi: payloadA } });
  story.guest(`kernel code calls the user page: ${smepOn.fault === undefined ? 'it ran?!' : `${describeFault(smepOn.fault)} — SMEP forbids ring 0 to fetch from a user page`}`);
  story.step('The exploit: kernel code execution clears CR4.SMEP, then calls the user page.');
  story.guest('mov rax, cr4; btr rax, 20; mov cr4, rax; call rdi');
  const unpinned = await a.exec(EXPLOIT, { regs: { rdi: payloadA } });
  const bypassed = ranInRing0(unpinned);
  story.guest(
    bypassed
      ? `→ the user page ran in ring 0: it read CR0 = ${hex(unpinned.regs.rax)}. CR4 is now ${hex(await a.readCr(4))}, SMEP off.`
      : `→ stopped: ${unpinned.stop}${unpinned.fault ? ` ${describeFault(unpinned.fault)}` : ''}`,
  );

  story.step('With pins (VM "pinned"): the guest kernel pinned its CR4 protections at the end of its boot.');
  const b = await host.guest({ vm: 'pinned' });
  const lock = await b.heki.lockDown();
  story.guest(lock.locked ? `pinned CR0 ${hex(lock.calls[0]!.pin)} and CR4 ${hex(lock.calls[1]!.pin)}` : `the lock-down failed: ${lock.stopped?.reason}`);
  const payloadB = await plantPayload(b, story);
  story.step('The same exploit.');
  story.guest('mov rax, cr4; btr rax, 20; mov cr4, rax; call rdi');
  const pinned = await b.exec(EXPLOIT, { regs: { rdi: payloadB } });
  const cr4 = await b.readCr(4);
  const blocked = pinned.stop === 'fault' && (cr4 & X86_CR4_SMEP) !== 0n;
  story.guest(
    pinned.fault !== undefined
      ? `→ ${describeFault(pinned.fault)} at ${hex(pinned.regs.rip)}, the MOV to CR4: the payload never ran. CR4 is still ${hex(cr4)}, SMEP on.`
      : `→ stopped: ${pinned.stop}; CR4 ${hex(cr4)}`,
  );
  return { bypassedWithoutPins: bypassed, blockedWithPins: blocked, unpinned, pinned };
}

async function main(): Promise<number> {
  const where = await exampleArguments(process.argv.slice(2), 'smep-bypass');
  const story = printedStory((t) => void process.stdout.write(t));
  const host = exampleHost(policy, where, {
    onEvent: (e) => {
      const words = vmmWords(e);
      if (words !== undefined) story.vmm(words);
    },
    onAttached: (text) => story.text(text),
  });
  story.text(`smep-bypass: a ret2usr exploit with and without Heki pins; the guests run on ${host.description}.`);
  try {
    const r = await smepBypass(host, story);
    story.text(`\nWithout pins the exploit ${r.bypassedWithoutPins ? 'worked' : 'did NOT work'}; with pins it ${r.blockedWithPins ? 'was stopped' : 'was NOT stopped'}.`);
    return r.bypassedWithoutPins && r.blockedWithPins ? 0 : 1;
  } finally {
    host.close();
  }
}

if (isMain('smep-bypass')) runMain(main);
