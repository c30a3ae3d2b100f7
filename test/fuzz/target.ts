/**
 * The server the frames campaign attacks, in this process: `pinbox serve` as a library on unix
 * sockets in a private temp dir, with small limits so that costly requests stay cheap, a watched
 * VM whose CR0.WP and CR4.SMEP a guest pinned, and bystanders (a guest of a VM of its own and a
 * control client) for the checker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSession, connect as openConnection } from '../../protocol/index.js';
import { connect, type Guest } from '../../guest-sdk/index.js';
import { EventLog, parsePolicy, startServer, Vmm, type PinboxServer } from '../../host/vmm/index.js';
import type { FramesTarget } from './campaigns.js';

export const WATCHED_VM = 'watched';
const SMEP = 1n << 20n;
const WP = 1n << 16n;

export interface FuzzServer extends FramesTarget {
  readonly vmm: Vmm;
  readonly server: PinboxServer;
  readonly bystander: Guest;
  readonly control: ClientSession;
  /** Whether the watched VM still has its pins in force on vCPU 0. */
  pinsHold(): boolean;
  close(): Promise<void>;
}

export async function fuzzServer(): Promise<FuzzServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-fuzz-'));
  const vmm = new Vmm({
    policy: parsePolicy({ msrFilter: { default: 'allow', deny: ['0xda0'] }, heki: { onDenial: 'log' } }),
    log: new EventLog({ capacity: 1000 }),
    budget: 20_000, maxExits: 200, maxRequestMs: 50,
  });
  const guestUrl = `unix:${join(dir, 'g.sock')}`;
  const controlUrl = `unix:${join(dir, 'c.sock')}`;
  const server = await startServer({ vmm, listen: guestUrl, control: controlUrl, tokenFile: false, frameDeadlineMs: 100, helloDeadlineMs: 2000 });
  const clients: { close(): void }[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of clients) c.close();
    await server.close();
    vmm.close();
    rmSync(dir, { recursive: true, force: true });
  };
  let owner: Guest, bystander: Guest, control: ClientSession;
  try {
    clients.push((owner = await connect(guestUrl, { vm: WATCHED_VM })));
    await owner.hypercall(13n, 0n, WP);
    await owner.hypercall(13n, 4n, SMEP);
    clients.push((bystander = await connect(guestUrl, { vm: 'bystander' })));
    clients.push((control = new ClientSession(await openConnection(controlUrl))));
    await control.hello({ role: 'control', token: server.token! });
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    vmm, server, bystander, control, guestUrl, controlUrl, token: server.token!,
    pinsHold: () => {
      const s = vmm.get(WATCHED_VM)!.getSregs(0);
      return (s.cr4 & SMEP) !== 0n && (s.cr0 & WP) !== 0n && vmm.get(WATCHED_VM)!.hekiPins.cr4 === SMEP;
    },
    close: cleanup,
  };
}
