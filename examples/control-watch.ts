/**
 * A control client beside a hardened guest (pinbox/control): it subscribes to the VM's Heki
 * events before the VM exists, snapshots the VM once the guest has pinned its control registers,
 * resets it (the pins go) and restores the snapshot (they come back), and holds the guest's next
 * user-space exit while it looks.
 *
 *   node dist/examples/control-watch.js                    # a pinbox server in this process
 *   node dist/examples/control-watch.js --control unix:/tmp/pinbox.ctl
 *        # against `pinbox serve --control unix:/tmp/pinbox.ctl --policy examples/policies/harden.json …`
 *        # (the token from /tmp/pinbox.ctl.token; the guest endpoint from the server's hello)
 *
 * Exits 0 when the pins held, went with the reset and came back with the snapshot.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, eventText, type Event } from '../control/index.js';
import { connect, describeFault, type Guest } from '../guest-sdk/index.js';
import { startServer, parsePolicy, Vmm, type PinboxServer } from '../host/vmm/index.js';
import { X86_CR4_SMEP } from '../protocol/abi.js';
import { hex } from '../protocol/notation.js';
import policy from './policies/harden.json' with { type: 'json' };
import { isMain, runMain } from './shared/example-host.js';
import { printedStory, type Story } from './shared/story.js';

const VM = policy.name;
/** MSR_CORE_THREAD_COUNT: the policy's filter sends reads to the VMM, which answers 0x10002. */
const FILTERED_MSR = 0x35;

/** Can the guest clear CR4.SMEP? Told, and the answer. */
async function trySmep(guest: Guest, story: Story): Promise<boolean> {
  const cr4 = await guest.readCr(4);
  const r = await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
  story.guest(`mov cr4, ${hex(cr4 & ~X86_CR4_SMEP)} → ${r.ok ? 'went through: SMEP is off' : `${describeFault(r.fault)}: refused`}`);
  if (r.ok) await guest.writeCr(4, cr4);
  return !r.ok;
}

export async function controlWatch(ctl: ControlClient, guestUrl: string, story: Story): Promise<boolean> {
  story.step(`The control client subscribes to the Heki events of VM "${VM}", which no guest has made yet.`);
  const sub = await ctl.subscribe({ vm: VM, events: ['heki_configure', 'heki_denial', 'vm_reset'] }, (e: Event) => story.control(eventText(e)));

  story.step('A guest kernel attaches to the VM (which the server makes from its policy) and locks its control registers.');
  const guest = await connect(guestUrl, { vm: VM });
  const lock = await guest.heki.lockDown();
  story.guest(lock.locked ? `locked: ${lock.calls.map((c) => `CR${c.cr} ${hex(c.pin)}`).join(', ')}` : `not locked: ${lock.stopped?.reason}`);
  const pinned = await trySmep(guest, story);

  story.step('The control client snapshots the VM, then resets it: a reset is user space\'s decision, and it clears the pins.');
  const snapshot = await ctl.snapshot(VM);
  story.control(`snapshot: ${snapshot.length} bytes`);
  await ctl.resetVm(VM);
  const afterReset = await trySmep(guest, story);

  story.step('It restores the snapshot: the pins come back with it.');
  await ctl.restore(VM, snapshot);
  const restored = await trySmep(guest, story);

  story.step(`It holds vCPU 0 in its next user-space exit; the guest reads MSR ${hex(FILTERED_MSR)}, which the filter sends to the VMM.`);
  const hold = await ctl.holdExit(VM, 0);
  const read = guest.rdmsr(FILTERED_MSR);
  story.control(eventText(await hold.held));
  story.control(`regs while held: rip ${hex((await ctl.getRegs(VM, 0)).rip)}; releasing`);
  await hold.release();
  story.guest(`rdmsr ${hex(FILTERED_MSR)} → ${hex(await read)}, answered once released`);

  await sub.close();
  guest.close();
  return pinned && !afterReset && restored;
}

/** A pinbox server of the example's policy in this process, on unix sockets in a private folder. */
async function localServer(): Promise<{ server: PinboxServer; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-control-watch-'));
  const vmm = new Vmm({ policy: parsePolicy(policy) });
  const server = await startServer({ vmm, listen: `unix:${join(dir, 'guest.sock')}`, control: `unix:${join(dir, 'control.sock')}` });
  return {
    server,
    close: async () => {
      await server.close();
      vmm.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function controlArgument(argv: readonly string[]): { url?: string; tokenFile?: string } {
  const usage = 'usage: node control-watch.js [--control unix:PATH|tcp:HOST:PORT [--token-file FILE]]';
  const out: { url?: string; tokenFile?: string } = {};
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(usage);
    if (argv[i] === '--control') out.url = value;
    else if (argv[i] === '--token-file') out.tokenFile = value;
    else throw new Error(usage);
  }
  if (out.tokenFile !== undefined && out.url === undefined) throw new Error(usage);
  return out;
}

async function main(): Promise<number> {
  const args = controlArgument(process.argv.slice(2));
  const story = printedStory((t) => void process.stdout.write(t));
  const local = args.url === undefined ? await localServer() : undefined;
  const url = args.url ?? local!.server.controlAddress!;
  const ctl = await ControlClient.connect(url, { client: 'control-watch', ...(args.tokenFile !== undefined && { tokenFile: args.tokenFile }) });
  story.text(`control-watch: a control client watches a hardened guest; the server's control endpoint is ${url}` +
    (local === undefined ? ' (its policy, not the example\'s, makes the VM).' : ', in this process.'));
  try {
    const guestUrl = ctl.guestEndpoints[0];
    if (guestUrl === undefined) throw new Error(`the server at ${url} names no guest endpoint`);
    const ok = await controlWatch(ctl, guestUrl, story);
    story.text(`\n${ok ? 'The pins held, went with the reset and came back with the snapshot.' : 'Something did NOT go as it should.'}`);
    return ok ? 0 : 1;
  } finally {
    ctl.close();
    await local?.close();
  }
}

if (isMain('control-watch')) runMain(main);
