/**
 * A gdb stub for one vCPU of one VM (`pinbox run --gdb`): it answers gdb's remote serial
 * protocol (packets.ts) and is the run loop's debugger (RunDebugHook, run/run-debug.ts).
 *
 * Breakpoints are KVM's, as a VMM's gdb stub arms them (QEMU's kvm_update_guest_debug()):
 * software ones (Z0) are an INT3 written over the instruction with KVM_GUESTDBG_USE_SW_BP, so
 * that the guest's #BP comes to the stub as KVM_EXIT_DEBUG; hardware ones (Z1) are the
 * debugger's DR0-DR3 and DR7 with KVM_GUESTDBG_USE_HW_BP; single step is KVM_GUESTDBG_SINGLESTEP.
 * Memory is read and written at guest-virtual addresses (page-walk.ts); a read shows the bytes
 * under the stub's own INT3s, as gdb expects.
 *
 * Stop replies say why (T05 with swbreak/hwbreak, T02 for Ctrl-C) and, for what gdb has no word
 * for — a Heki denial, an MSR exit to user space, the guest's unhandled fault, a triple fault —
 * carry `pinbox:REASON;` (gdb ignores pairs it does not know) after an O packet that says it in
 * words on gdb's console.
 *
 * A hostile client costs its own VM only: everything is asynchronous, a packet is at most
 * PACKET_SIZE bytes, a memory access at most MAX_MEMORY bytes, and a malformed request is
 * answered `E01` (bad argument), `E0e` (no mapping), `E16` (refused).
 */
import {
  BP_VECTOR, DB_VECTOR, DR6_TRAP_BITS, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_INJECT_BP, KVM_GUESTDBG_SINGLESTEP,
  KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP,
} from '../../../protocol/abi.js';
import { describeFault, hex } from '../../../protocol/notation.js';
import { KvmError } from '../../kvm/api/errors.js';
import type { KvmRunDebug } from '../../kvm/api/exits.js';
import type { Regs, Sregs } from '../../kvm/api/regs.js';
import { VmmError } from '../errors.js';
import type { Machine } from '../machine.js';
import type { ExecOutcome } from '../run/exec.js';
import type { RunDebugHook } from '../run/run-debug.js';
import { chainSummary, describeChain } from '../run/triple-fault.js';
import { MSR_REASON_NAMES, type MsrExitChoice, type UserSpaceExit } from '../run/user-space-exit.js';
import { monitorCommand } from './monitor.js';
import { framePacket, fromHex, PACKET_SIZE, PacketReader, parseHexNumber, toHex, type Received } from './packets.js';
import { translateForDebugger } from './page-walk.js';
import { GDB_REGISTERS, parseRegisterHex, readRegister, registerHex, targetXml, type RegisterFile } from './registers.js';

/** The largest memory access one packet may ask for (its hex fills a reply packet). */
const MAX_MEMORY = PACKET_SIZE / 2 - 16;
const INT3 = 0xcc;
/** Guest instructions between two looks at the client while the guest runs. */
const SLICE = 200_000;
const SIGINT = 2, SIGTRAP = 5, SIGSEGV = 11;

const E_BAD = 'E01';
const E_NOMAP = 'E0e';
const E_REFUSED = 'E16';

/** Where the stub sends: a connected client (server.ts), or nowhere between clients. */
export interface GdbConnection {
  send(data: Buffer): void;
  close(): void;
}

interface Stop {
  readonly signal: number;
  /** The `name:value;` pairs after the signal. */
  readonly pairs: string;
  /** What gdb's console shows before the stop (an O packet). */
  readonly message?: string;
}

export class GdbStub implements RunDebugHook {
  readonly slice = SLICE;
  private readonly reader = new PacketReader();
  private connection: GdbConnection | undefined;
  private noAck = false;
  /** The guest is stopped: `resume` lets it go on. */
  private stopped: Stop | undefined;
  private resume: (() => void) | undefined;
  private abandon: ((e: Error) => void) | undefined;
  private interruptWanted = false;
  private stopAtStart = false;
  /** gdb waits for a stop reply (it sent c, s, or '?' while the guest ran). */
  private replyOwed = false;
  private stepping = false;
  /** INT3s the stub placed: guest-virtual address → the physical address and the byte it covered. */
  private readonly swBreakpoints = new Map<bigint, { gpa: number; original: number }>();
  private readonly hwBreakpoints: (bigint | undefined)[] = [undefined, undefined, undefined, undefined];
  /** The registers a request ended with, shown while the stub holds the end (ended()). */
  private endRegs: Regs | undefined;
  private ended_ = false;
  private xml = targetXml();

  constructor(
    readonly machine: Machine,
    readonly vcpu: number,
    private readonly recentEvents: () => string[],
  ) {}

  /** A client connected; a stub serves one at a time (server.ts refuses others). */
  attach(connection: GdbConnection): void {
    this.connection = connection;
    this.noAck = false;
    this.replyOwed = false;
  }

  /** The client went away: its breakpoints are removed and the guest runs on, as after `detach`. */
  detach(): void {
    this.connection = undefined;
    this.replyOwed = false;
    this.removeAllBreakpoints();
    this.applyGuestDebug(false);
    this.continueGuest();
  }

  get hasClient(): boolean {
    return this.connection !== undefined;
  }

  /** `--gdb-wait`: the guest stops before its first instruction, for gdb to attach to. */
  waitAtEntry(): void {
    this.stopAtStart = true;
  }

  started(): Promise<void> {
    if (!this.stopAtStart) return Promise.resolve();
    this.stopAtStart = false;
    return this.stop({ signal: SIGTRAP, pairs: '' });
  }

  /** The run is over: gdb is told the exit status (W) and let go. */
  finish(status: number): void {
    this.ended_ = true;
    this.send(`W${(status & 0xff).toString(16).padStart(2, '0')}`);
    this.connection?.close();
    this.connection = undefined;
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    for (const r of this.reader.feed(chunk)) this.handle(r);
  }

  private handle(r: Received): void {
    switch (r.kind) {
      case 'interrupt':
        if (this.stopped === undefined) this.interruptWanted = true;
        return;
      case 'corrupt':
        if (!this.noAck) this.connection?.send(Buffer.from('-'));
        return;
      case 'oversized':
        if (!this.noAck) this.connection?.send(Buffer.from('+'));
        this.send(E_BAD);
        return;
      case 'ack':
      case 'nack':
        return;
      case 'packet':
        if (!this.noAck) this.connection?.send(Buffer.from('+'));
        this.command(r.payload);
    }
  }

  private send(payload: string): void {
    this.connection?.send(framePacket(payload));
  }

  // ---- RunDebugHook: what the run loop tells the stub ----

  between(): Promise<void> {
    if (this.interruptWanted) {
      this.interruptWanted = false;
      return this.stop({ signal: SIGINT, pairs: '' });
    }
    return new Promise((resolve) => setImmediate(resolve));
  }

  debugExit(debug: KvmRunDebug): Promise<void> {
    if (debug.exception === BP_VECTOR) {
      if (this.swBreakpoints.has(debug.pc)) return this.stop({ signal: SIGTRAP, pairs: 'swbreak:;' });
      // The guest's own INT3: its #BP, delivered as if no debugger were there (after the INT3).
      this.machine.setRegs(this.vcpu, { rip: debug.pc + 1n });
      this.machine.vcpu(this.vcpu).vcpu.setGuestDebug({ control: this.control() | KVM_GUESTDBG_INJECT_BP, debugreg: this.debugRegs() });
      return Promise.resolve();
    }
    if (debug.exception === DB_VECTOR && (Number(debug.dr6) & DR6_TRAP_BITS) !== 0 && !this.stepping) {
      return this.stop({ signal: SIGTRAP, pairs: 'hwbreak:;' });
    }
    return this.stop({ signal: SIGTRAP, pairs: '' });
  }

  ended(outcome: ExecOutcome): Promise<void> {
    let stop: Stop;
    if (outcome.stop === 'shutdown') {
      const chain = outcome.chain ?? [];
      const lines = chain.length > 0 ? `: ${chainSummary(chain)}\n${describeChain(chain).map((l) => `  ${l}\n`).join('')}` : '\n';
      stop = { signal: SIGSEGV, pairs: 'pinbox:triple_fault;', message: `pinbox: the vCPU shut down (triple fault)${lines}` };
    } else if (outcome.stop === 'fault') {
      const f = describeFault(outcome.fault!);
      stop = { signal: SIGSEGV, pairs: 'pinbox:guest_fault;', message: `pinbox: the guest raised ${f} at ${hex(outcome.regs.rip)}, which it does not handle\n` };
    } else {
      return Promise.resolve();
    }
    this.endRegs = outcome.regs;
    return this.stop(stop).finally(() => {
      this.endRegs = undefined;
    });
  }

  /**
   * The request's hook at each user-space exit (PerformOptions.onExit): a Heki denial and an MSR
   * exit stop the guest at the instruction, before the VMM answers.
   */
  readonly onExit = (exit: UserSpaceExit): Promise<void | MsrExitChoice> | undefined => {
    if (exit.reason === 'KVM_EXIT_HEKI_DENIAL') {
      const h = exit.heki!;
      return this.stop({
        signal: SIGTRAP, pairs: 'pinbox:heki_denial;',
        message: `pinbox: Heki denied the write of ${hex(h.value)} to ${h.reason === 1 ? 'CR0' : h.reason === 2 ? 'CR4' : `control register (reason ${h.reason})`}, whose pinned bits it would clear; the guest gets #GP(0) when it continues\n`,
      });
    }
    if (exit.reason === 'KVM_EXIT_X86_RDMSR' || exit.reason === 'KVM_EXIT_X86_WRMSR') {
      const m = exit.msr!;
      const what = exit.reason === 'KVM_EXIT_X86_RDMSR' ? `RDMSR ${hex(m.index)}` : `WRMSR ${hex(m.index)} ← ${hex(m.data)}`;
      return this.stop({ signal: SIGTRAP, pairs: 'pinbox:msr_exit;', message: `pinbox: ${what} exits to user space (reason ${MSR_REASON_NAMES[m.reason] ?? hex(m.reason)})\n` });
    }
    return undefined;
  };

  /** Stops the guest: gdb gets the stop reply; the promise settles when gdb lets it go on. */
  private stop(stop: Stop): Promise<void> {
    this.stepping = false;
    this.stopped = stop;
    // A stop reply (and console output) only where gdb waits for one: after c or s, or a '?'
    // asked while the guest ran; otherwise its next '?' gets it.
    if (this.replyOwed) {
      this.replyOwed = false;
      if (stop.message !== undefined) this.send(`O${toHex(stop.message)}`);
      this.send(this.stopReply(stop));
    }
    // Without a client nothing can let it go on: the guest runs on (a stop gdb never sees).
    if (this.connection === undefined) {
      this.stopped = undefined;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.resume = resolve;
      this.abandon = reject;
    });
  }

  private stopReply(stop: Stop): string {
    return `T${stop.signal.toString(16).padStart(2, '0')}thread:01;${stop.pairs}`;
  }

  private continueGuest(): void {
    const resume = this.resume;
    this.stopped = undefined;
    this.resume = undefined;
    this.abandon = undefined;
    resume?.();
  }

  // ---- the commands ----

  private command(p: string): void {
    try {
      const reply = this.answer(p);
      if (reply !== null) this.send(reply);
      // Acknowledged in the old mode, replied to; no acks from here on.
      if (p === 'QStartNoAckMode') this.noAck = true;
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      this.send(E_REFUSED);
    }
  }

  /** The reply to a packet; null when there is none now (c, s: the stop reply comes later). */
  private answer(p: string): string | null {
    const head = p[0];
    const rest = p.slice(1);
    switch (head) {
      case '?':
        // gdb attached to a running guest: it stops at the end of the slice, and says so then.
        if (this.stopped === undefined && !this.ended_) {
          this.interruptWanted = true;
          this.replyOwed = true;
          return null;
        }
        return this.stopReply(this.stopped ?? { signal: SIGTRAP, pairs: '' });
      case 'g':
        return this.stopped === undefined ? E_REFUSED : GDB_REGISTERS.map((r) => registerHex(readRegister(this.registerFile(), r), r.bits)).join('');
      case 'G':
        return E_REFUSED;
      case 'p': {
        const n = parseHexNumber(rest);
        const r = n === undefined ? undefined : GDB_REGISTERS[Number(n)];
        if (r === undefined || this.stopped === undefined) return E_BAD;
        return registerHex(readRegister(this.registerFile(), r), r.bits);
      }
      case 'P':
        return this.writeRegister(rest);
      case 'm':
        return this.readMemory(rest);
      case 'M':
        return this.writeMemory(rest);
      case 'c':
      case 's':
        return this.go(head === 's', rest);
      case 'C':
      case 'S': {
        // With a signal: the guest has no signals; what raised the stop (its fault) is already
        // its own, so this is c or s. The address after ';' is as theirs.
        const semi = rest.indexOf(';');
        if (parseHexNumber(semi < 0 ? rest : rest.slice(0, semi)) === undefined) return E_BAD;
        return this.go(head === 'S', semi < 0 ? '' : rest.slice(semi + 1));
      }
      case 'Z':
      case 'z':
        return this.breakpoint(head === 'Z', rest);
      case 'H':
        return 'OK';
      case 'T':
        return rest === '1' || rest === '01' ? 'OK' : E_BAD;
      case 'D':
        this.send('OK');
        this.detach();
        return null;
      case 'k':
        this.killed();
        return null;
      case 'q':
      case 'Q':
        return this.query(p);
      case 'v':
        return this.vPacket(p);
      default:
        return '';
    }
  }

  private query(p: string): string {
    if (p.startsWith('qSupported')) return `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+`;
    if (p === 'QStartNoAckMode') {
      return 'OK';
    }
    if (p.startsWith('qXfer:features:read:target.xml:')) {
      const [off, len] = p.slice('qXfer:features:read:target.xml:'.length).split(',').map(parseHexNumber);
      if (off === undefined || len === undefined) return E_BAD;
      const part = this.xml.slice(Number(off), Number(off) + Math.min(Number(len), PACKET_SIZE - 16));
      return (Number(off) + part.length >= this.xml.length ? 'l' : 'm') + part;
    }
    if (p.startsWith('qXfer:')) return E_BAD;
    if (p === 'qAttached') return '1';
    if (p === 'qC') return 'QC01';
    if (p === 'qfThreadInfo') return 'm01';
    if (p === 'qsThreadInfo') return 'l';
    if (p.startsWith('qThreadExtraInfo')) return toHex(`vCPU ${this.vcpu} of VM "${this.machine.name}"`);
    if (p.startsWith('qRcmd,')) {
      const cmd = fromHex(p.slice(6));
      if (cmd === undefined) return E_BAD;
      const out = monitorCommand(Buffer.from(cmd).toString('utf8'), { machine: this.machine, vcpu: this.vcpu, recentEvents: this.recentEvents });
      if (out.length > 0) this.send(`O${toHex(out)}`);
      return 'OK';
    }
    return '';
  }

  private vPacket(p: string): string {
    if (p === 'vMustReplyEmpty' || p.startsWith('vCont')) return '';
    if (p.startsWith('vKill')) {
      this.killed();
      return 'OK';
    }
    return '';
  }

  /** c / s [addr]: continue or single-step, from `addr` if given. */
  private go(step: boolean, rest: string): string | null {
    if (this.stopped === undefined || this.ended_) return E_REFUSED;
    if (rest !== '') {
      const at = parseHexNumber(rest);
      if (at === undefined) return E_BAD;
      this.machine.setRegs(this.vcpu, { rip: at });
    }
    this.stepping = step;
    this.applyGuestDebug(step);
    this.replyOwed = true;
    this.continueGuest();
    return null;
  }

  /** gdb's `kill`: the VM is killed, and `pinbox run` ends. */
  private killed(): void {
    this.removeAllBreakpoints();
    this.applyGuestDebug(false);
    this.machine.kill('control');
    // The request ends here: the guest does not run on in a killed VM.
    const abandon = this.abandon;
    this.stopped = undefined;
    this.resume = undefined;
    this.abandon = undefined;
    abandon?.(new VmmError('vm_killed', `VM "${this.machine.name}" was killed by gdb`));
  }

  private registerFile(): RegisterFile {
    const m = this.machine, id = this.vcpu;
    const end = this.endRegs;
    let sregs: Sregs | undefined;
    return {
      getRegs: () => end ?? m.getRegs(id),
      getSregs: () => (sregs ??= m.getSregs(id)),
      getMsr: (index) => m.getMsrs(id, [index])[0]?.data,
    };
  }

  /** P n=value: the GPRs, RIP and EFLAGS (KVM_SET_REGS), CR0-CR8 and EFER (KVM_SET_SREGS, checked by KVM). */
  private writeRegister(rest: string): string {
    const eq = rest.indexOf('=');
    const n = parseHexNumber(rest.slice(0, eq));
    const r = eq < 0 || n === undefined ? undefined : GDB_REGISTERS[Number(n)];
    const value = rest.slice(eq + 1);
    if (r === undefined || this.stopped === undefined || this.endRegs !== undefined) return E_BAD;
    if (value.length !== 2 * Math.ceil(r.bits / 8) || fromHex(value) === undefined) return E_BAD;
    const v = parseRegisterHex(value);
    const s = r.source;
    if (s.kind === 'regs') this.machine.setRegs(this.vcpu, { [s.field]: v });
    else if (s.kind === 'sregs') this.machine.setSregs(this.vcpu, { [s.field]: v });
    else return E_REFUSED;
    return 'OK';
  }

  /** A guest-virtual range split at page boundaries, each piece physical; undefined where unmapped. */
  private physicalPieces(addr: bigint, length: number): { gpa: number; length: number }[] | undefined {
    const sregs = this.machine.getSregs(this.vcpu);
    const memory = this.machine.memory;
    const out: { gpa: number; length: number }[] = [];
    let va = addr, left = length;
    while (left > 0) {
      const inPage = Math.min(left, 0x1000 - Number(va & 0xfffn));
      const pa = translateForDebugger(memory, sregs, va);
      if (pa === undefined || !memory.contains(Number(pa), inPage)) return undefined;
      out.push({ gpa: Number(pa), length: inPage });
      va = BigInt.asUintN(64, va + BigInt(inPage));
      left -= inPage;
    }
    return out;
  }

  private parseRange(spec: string): { addr: bigint; length: number } | undefined {
    const [a, l] = spec.split(',');
    const addr = parseHexNumber(a ?? '');
    const length = parseHexNumber(l ?? '');
    if (addr === undefined || length === undefined || length > BigInt(MAX_MEMORY)) return undefined;
    return { addr, length: Number(length) };
  }

  private readMemory(rest: string): string {
    const range = this.parseRange(rest);
    if (range === undefined) return E_BAD;
    const pieces = this.physicalPieces(range.addr, range.length);
    if (pieces === undefined) return E_NOMAP;
    const bytes = new Uint8Array(range.length);
    let at = 0;
    for (const piece of pieces) {
      bytes.set(this.machine.memory.readBytes(piece.gpa, piece.length), at);
      at += piece.length;
    }
    // The stub's own INT3s are not the guest's bytes.
    for (const [va, bp] of this.swBreakpoints) {
      const k = va - range.addr;
      if (k >= 0n && k < BigInt(range.length)) bytes[Number(k)] = bp.original;
    }
    return toHex(bytes);
  }

  private writeMemory(rest: string): string {
    const colon = rest.indexOf(':');
    const range = colon < 0 ? undefined : this.parseRange(rest.slice(0, colon));
    const data = colon < 0 ? undefined : fromHex(rest.slice(colon + 1));
    if (range === undefined || data === undefined || data.length !== range.length) return E_BAD;
    const pieces = this.physicalPieces(range.addr, range.length);
    if (pieces === undefined) return E_NOMAP;
    let at = 0;
    for (const piece of pieces) {
      this.machine.memory.writeBytes(piece.gpa, data.subarray(at, at + piece.length));
      at += piece.length;
    }
    return 'OK';
  }

  /** Z/z type,addr,kind: 0 software, 1 hardware (execution); watchpoints are not offered. */
  private breakpoint(insert: boolean, rest: string): string {
    const [t, a] = rest.split(',');
    const addr = parseHexNumber(a ?? '');
    if (addr === undefined) return E_BAD;
    if (t === '0') return insert ? this.insertSw(addr) : this.removeSw(addr);
    if (t === '1') {
      const slot = insert ? this.hwBreakpoints.indexOf(undefined) : this.hwBreakpoints.indexOf(addr);
      if (slot < 0) return insert ? E_REFUSED : 'OK';
      this.hwBreakpoints[slot] = insert ? addr : undefined;
      this.applyGuestDebug(this.stepping);
      return 'OK';
    }
    return '';
  }

  private insertSw(addr: bigint): string {
    if (this.swBreakpoints.has(addr)) return 'OK';
    const pieces = this.physicalPieces(addr, 1);
    if (pieces === undefined) return E_NOMAP;
    const gpa = pieces[0]!.gpa;
    const memory = this.machine.memory;
    this.swBreakpoints.set(addr, { gpa, original: memory.read8(gpa) });
    memory.writeBytes(gpa, Uint8Array.of(INT3));
    this.applyGuestDebug(this.stepping);
    return 'OK';
  }

  private removeSw(addr: bigint): string {
    const bp = this.swBreakpoints.get(addr);
    if (bp === undefined) return 'OK';
    this.swBreakpoints.delete(addr);
    if (this.machine.memory.read8(bp.gpa) === INT3) this.machine.memory.writeBytes(bp.gpa, Uint8Array.of(bp.original));
    return 'OK';
  }

  private removeAllBreakpoints(): void {
    for (const addr of [...this.swBreakpoints.keys()]) this.removeSw(addr);
    this.hwBreakpoints.fill(undefined);
  }

  /** DR0-DR3 and DR7 for KVM_GUESTDBG_USE_HW_BP: each used slot enabled globally, for execution. */
  private debugRegs(): bigint[] {
    const dr = [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];
    let dr7 = 0n;
    this.hwBreakpoints.forEach((a, i) => {
      if (a === undefined) return;
      dr[i] = a;
      dr7 |= 2n << BigInt(2 * i); // Gn; R/W and LEN 00: execution
    });
    dr[7] = dr7;
    return dr;
  }

  private control(): number {
    let control = KVM_GUESTDBG_ENABLE;
    if (this.swBreakpoints.size > 0) control |= KVM_GUESTDBG_USE_SW_BP;
    if (this.hwBreakpoints.some((a) => a !== undefined)) control |= KVM_GUESTDBG_USE_HW_BP;
    return control;
  }

  /** KVM_SET_GUEST_DEBUG for the breakpoints in place and, if asked, one single step. */
  private applyGuestDebug(step: boolean): void {
    if (this.machine.runState === 'killed') return;
    const control = this.connection === undefined && !step ? 0 : this.control() | (step ? KVM_GUESTDBG_SINGLESTEP : 0);
    this.machine.vcpu(this.vcpu).vcpu.setGuestDebug({ control, debugreg: this.debugRegs() });
  }
}
