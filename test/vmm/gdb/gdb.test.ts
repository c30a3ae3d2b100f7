/**
 * `pinbox run --gdb`: the stub as the real gdb meets it (gdb -batch against a C guest built with
 * the machine's gcc: break at a symbol, step, read a variable, a hardware breakpoint, a Heki
 * denial and the guest's unhandled fault stopping it, monitor commands, the exit status), and
 * as a hostile client meets it (malformed and oversized packets, a second client, Ctrl-C on a
 * spinning guest). Expectations come from gdb's Remote Protocol appendix and docs/heki.md;
 * where gdb or gcc is missing the gdb tests show as "not run".
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { framePacket, PACKET_SIZE, PacketReader } from '../../../host/vmm/gdb/packets.js';
import { buildGuest, missingTool, whyNoGuestCompiler } from '../../support/gcc.js';
import { pinbox, startPinbox, type Running } from '../cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-gdb-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ name: 'gdb', heki: { configureExits: ['cr0', 'cr4'], denialExits: ['cr0', 'cr4'], onDenial: 'log' } }));
const flat = (name: string, ...bytes: number[]): string => {
  const path = join(dir, name);
  writeFileSync(path, Uint8Array.from(bytes));
  return path;
};

/** `pinbox run … --gdb tcp:127.0.0.1:0`, and the port the stub listens on. */
async function runWithGdb(image: string, ...more: string[]): Promise<{ run: Running; port: number }> {
  const run = startPinbox(['run', '--policy', policy, '--image', image, '--gdb', 'tcp:127.0.0.1:0', ...more]);
  for (let k = 0; k < 2000; k++) {
    const m = /gdb stub for vCPU 0 on tcp:127\.0\.0\.1:(\d+)/.exec(run.err());
    if (m !== null) return { run, port: Number(m[1]) };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the stub never said where it listens: ${run.err()}`);
}

/** A raw protocol client: packets in, replies out (acks dropped). */
class RawClient {
  private readonly reader = new PacketReader();
  private readonly replies: string[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const r of this.reader.feed(chunk)) if (r.kind === 'packet') this.replies.push(r.payload);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  async reply(): Promise<string> {
    while (this.replies.length === 0) {
      if (this.closed) throw new Error('the stub closed the connection');
      await new Promise<void>((r) => (this.waiting = r));
    }
    return this.replies.shift()!;
  }

  /** Sends a packet and waits for the next reply that is not console output (O…). */
  async ask(payload: string | Buffer): Promise<string> {
    this.socket.write(typeof payload === 'string' ? framePacket(payload) : payload);
    for (;;) {
      const r = await this.reply();
      if (!/^O[0-9a-f]+$/.test(r) || r === 'OK') return r;
    }
  }
}

test('packets: checksums, escapes, Ctrl-C between packets, and a packet over the size limit is dropped whole', (t) => {
  const reader = new PacketReader();
  t.deepEqual(reader.feed(Buffer.from('+$g#67\x03$m0,1#fa')), [{ kind: 'ack' }, { kind: 'packet', payload: 'g' }, { kind: 'interrupt' }, { kind: 'packet', payload: 'm0,1' }]);
  t.deepEqual(reader.feed(Buffer.from('$g#00')), [{ kind: 'corrupt' }]);
  // '}' escapes the next byte XOR 0x20: "}]" is '}' itself; the checksum is over the bytes sent.
  t.deepEqual(reader.feed(framePacket('a}b#c$d*e')), [{ kind: 'packet', payload: 'a}b#c$d*e' }]);
  t.deepEqual(reader.feed(Buffer.concat([Buffer.from('$'), Buffer.alloc(PACKET_SIZE + 1, 0x61), Buffer.from('#00$?#3f')])), [{ kind: 'oversized' }, { kind: 'packet', payload: '?' }]);
});

test('a hostile client: malformed requests get E replies, an oversized packet E01, a second client is turned away, Ctrl-C stops a spinning guest', async (t) => {
  // jmp $ : the guest never stops by itself.
  const { run, port } = await runWithGdb(flat('spin.bin', 0xeb, 0xfe), '--budget', '100000000000');
  const c = await RawClient.open(port);
  try {
    // Attached to a running guest, '?' stops it at the end of a slice: SIGINT there.
    t.regex(await c.ask('?'), /^T02/);
    t.is(await c.ask('m100000,2'), 'ebfe');
    t.is(await c.ask('mzz,2'), 'E01');
    t.is(await c.ask('m100000'), 'E01');
    t.is(await c.ask(`m100000,${(PACKET_SIZE * 4).toString(16)}`), 'E01');
    // A virtual address no page table maps.
    t.is(await c.ask('m7fff00000000,4'), 'E0e');
    t.is(await c.ask('pzz'), 'E01');
    t.is(await c.ask('p1000'), 'E01');
    t.is(await c.ask('P10=12'), 'E01');
    t.is(await c.ask('Z0,nothex,1'), 'E01');
    t.is(await c.ask('qUnknownThing'), '');
    t.is(await c.ask(Buffer.concat([Buffer.from('$M100000,1:'), Buffer.alloc(PACKET_SIZE, 0x30), Buffer.from('#00')])), 'E01');
    // RIP (register 16) reads as the loop's address, little-endian.
    t.is(await c.ask('p10'), '0000100000000000');
    const second = await RawClient.open(port);
    t.regex(await second.reply(), /^O/);
    await new Promise<void>((r) => (second.closed ? r() : second.socket.once('close', () => r())));
    // Ctrl-C while the guest runs: it stops with SIGINT.
    c.socket.write(framePacket('c'));
    await new Promise((r) => setTimeout(r, 50));
    c.socket.write(Buffer.from([0x03]));
    t.regex(await c.reply(), /^T02/);
    // kill: the VM is killed and pinbox run ends, closing the connection.
    c.socket.write(framePacket('k'));
    await new Promise<void>((r) => (c.closed ? r() : c.socket.once('close', () => r())));
  } finally {
    c.socket.destroy();
  }
  const done = await run.done;
  t.is(done.code, 1);
  t.regex(done.err, /gdb killed the VM/);
});

test('a client that never reads its replies is dropped once they pass the bound; the run goes on', async (t) => {
  const { run, port } = await runWithGdb(flat('spin-unread.bin', 0xeb, 0xfe), '--budget', '100000000000', '--gdb-wait');
  const c = await RawClient.open(port);
  try {
    c.socket.pause(); // reads nothing from now on
    // 40,000 requests of 0x1ff0 bytes each: about 640 MB of replies if the stub kept them all.
    const request = framePacket('m100000,1ff0');
    c.socket.write(Buffer.concat(Array.from({ length: 40_000 }, () => request)));
    // The stub drops the first client (a paused socket may not see the close): the next client
    // is welcome once it has, and is turned away ("another gdb is attached") until then.
    let next: RawClient | undefined;
    for (let k = 0; k < 300 && next === undefined; k++) {
      const candidate = await RawClient.open(port);
      const first = await Promise.race([candidate.reply().catch(() => 'closed'), new Promise<string>((r) => setTimeout(() => r('none'), 200))]);
      if (first === 'none') next = candidate;
      else {
        candidate.socket.destroy();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (next === undefined) throw new Error('the stub never dropped the client that does not read');
    t.regex(await next.ask('?'), /^T/);
    next.socket.write(framePacket('k'));
    await new Promise<void>((r) => (next.closed ? r() : next.socket.once('close', () => r())));
  } finally {
    c.socket.destroy();
  }
  t.is((await run.done).code, 1);
});

const source = fileURLToPath(new URL('../../../../test/vmm/gdb/target.c', import.meta.url));
const script = fileURLToPath(new URL('../../../../test/fixtures/images/hello.ld', import.meta.url));
const why = whyNoGuestCompiler() ?? missingTool('gdb');

function gdbBatch(port: number, elf: string, commands: readonly string[]): Promise<string> {
  // gdb waits 2 s for a reply by default, then resends and loses step: a loaded machine takes longer.
  const args = ['-batch', '-nx', '-ex', 'set pagination off', '-ex', 'set remotetimeout 30', '-ex', `file ${elf}`, '-ex', `target remote 127.0.0.1:${port}`, ...commands.flatMap((c) => ['-ex', c])];
  return new Promise((resolve, reject) => {
    execFile('gdb', args, { encoding: 'utf8' }, (error, stdout, stderr) => (error !== null && stdout === '' ? reject(error) : resolve(stdout + stderr)));
  });
}

if (why !== undefined) {
  test.todo(`gdb -batch debugs a C guest through pinbox run --gdb — not run: ${why}`);
} else {
  test('gdb -batch: break at a symbol, step, read variables and control registers, a hardware breakpoint, monitor, a Heki denial and an unhandled fault stop the guest, the exit code', async (t) => {
    const built = buildGuest([source], { opt: '-O0 -g', linkerScript: script });
    try {
      const elf = join(dir, 'target.elf');
      writeFileSync(elf, built.elf);
      const { run, port } = await runWithGdb(elf, '--gdb-wait');
      const out = await gdbBatch(port, elf, [
        'print $pc == _start',
        'break accumulate', 'continue', 'next', 'next', 'next', 'print n', 'print total', 'finish',
        'print counter', 'print/x $cr0', 'print/x $efer', 'print $cs',
        'monitor pins', 'hbreak clear_wp', 'continue', 'stepi', 'monitor pins',
        'continue', 'print/x $rip', 'continue', 'continue',
      ]);
      t.log(out);
      t.regex(out, /\$1 = 1/); // stopped before the first instruction, at the ELF entry
      t.regex(out, /Breakpoint 1, accumulate \(n=10\)/);
      t.regex(out, /\$2 = 10/);
      t.regex(out, /\$3 = 1\b/); // total after the first round: 1*1
      // 1² + … + 10² = 385, returned and stored.
      t.regex(out, /Value returned is \$4 = 385/);
      t.regex(out, /\$5 = 385/);
      t.regex(out, /\$6 = 0x80050033/); // the boot CR0 (docs/boot.md): PG, WP, NE, ET, MP, PE
      t.regex(out, /\$7 = 0xd01/); // EFER: LMA, LME, SCE, NXE
      t.regex(out, /\$8 = 16/); // CS 0x10
      t.regex(out, /Heki pins of VM "gdb" \(profile v2\): CR0 0x0, CR4 0x0/);
      t.regex(out, /Breakpoint 2, clear_wp \(\)/);
      t.regex(out, /Heki pins of VM "gdb" \(profile v2\): CR0 0x10000, CR4 0x0/);
      t.regex(out, /pinbox: Heki denied the write of 0x80040033 to CR0/);
      t.regex(out, /Program received signal SIGTRAP[\s\S]*in clear_wp \(\)/);
      t.regex(out, /pinbox: the guest raised #GP\(0\) at 0x[0-9a-f]+, which it does not handle/);
      t.regex(out, /Program received signal SIGSEGV/);
      t.regex(out, /\[Inferior 1 \(Remote target\) exited with code 01\]/);
      const done = await run.done;
      t.is(done.code, 1);
      t.regex(done.out, /heki_denial reason=1\(CR0\)/);
    } finally {
      built.cleanup();
    }
  });
}

test('a triple fault stops the guest for gdb with its chain on the console, then the run ends with W01', async (t) => {
  // lidt [rip+2] (limit 0) ; ud2: #UD → #GP → #GP → #DF → #GP, shutdown (cli-commands.test.ts).
  const { run, port } = await runWithGdb(flat('tf.bin', 0x0f, 0x01, 0x1d, 2, 0, 0, 0, 0x0f, 0x0b, ...new Array(10).fill(0)), '--gdb-wait');
  const c = await RawClient.open(port);
  try {
    t.regex(await c.ask('?'), /^T05/);
    c.socket.write(framePacket('c'));
    const console = Buffer.from((await c.reply()).slice(1), 'hex').toString('utf8');
    t.regex(console, /pinbox: the vCPU shut down \(triple fault\): #UD → #GP\(0x33\) → #GP\(0x6b\) → #DF\(0\) → #GP\(0x43\)/);
    t.regex(console, /IDT\[8\] at 0x80: beyond the IDT limit/);
    t.is(await c.reply(), 'T0bthread:01;pinbox:triple_fault;');
    // The state it died in: RIP at the UD2.
    t.is(await c.ask('p10'), '0700100000000000');
    t.is(await c.ask('c'), 'W01');
  } finally {
    c.socket.destroy();
  }
  t.is((await run.done).code, 1);
});

test('--gdb: a malformed endpoint and a backend other than the model are usage errors (exit 2)', async (t) => {
  const image = flat('hlt.bin', 0xf4);
  const bad = await pinbox(['run', '--policy', policy, '--image', image, '--gdb', '127.0.0.1:1234']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--gdb takes tcp:HOST:PORT/);
  const kvm = await pinbox(['run', '--policy', policy, '--image', image, '--gdb', 'tcp:127.0.0.1:0', '--backend', 'kvm']);
  t.is(kvm.code, 2);
  t.regex(kvm.err, /--gdb needs the model backend/);
  const wait = await pinbox(['run', '--policy', policy, '--image', image, '--gdb-wait']);
  t.is(wait.code, 2);
});
