/**
 * A small in-process host for the SDK's tests: a SessionHandler answering guest ops the way
 * PROTOCOL.md §5 says a pinbox host does, over a scripted vCPU — a handful of MSRs, the control
 * registers, a Heki host per docs/heki.md §1.3–1.4 and §2.2, CPUID leaves, and an `exec` that
 * recognises a few instructions. It is not a CPU model: it exists so that the SDK's requests
 * meet real protocol answers, with semantics the tests can work out by hand.
 */
import {
  type Connection, type HelloParams, type HandlerRequest, type HelloReply, ProtocolError, ServerSession,
  type SessionHandler, createMemoryPair, decodeMsgpack, type Exit, type Fault, type Regs, KVM_REGS_FIELDS,
  HEKI_CR4_PINNABLE_MASK_V2, X86_CR0_WP, X86_CR0_TS, X86_CR4_FSGSBASE, X86_CR4_SMAP, X86_CR4_SMEP,
  X86_CR4_UMIP, GP_VECTOR, UD_VECTOR,
} from '../../protocol/index.js';
import { type ConnectOptions, type Guest, connect } from '../../guest-sdk/index.js';
import { DEFAULT_HOST_CR0 } from '../../host/kvm/kvm.js';

export interface ScriptedMsr {
  value: bigint;
  /** RDMSR raises #GP(0) when false. */
  readable?: boolean;
  /** WRMSR raises #GP(0) when false. */
  writable?: boolean;
  /** The MSR filter denies it: a KVM_EXIT_X86_RDMSR/WRMSR exit (reason FILTER), answered with error 1, then #GP(0). */
  filtered?: boolean;
}

const GP0: Fault = { vector: GP_VECTOR, errorCode: 0 };
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
/** -KVM_EINVAL, -KVM_EPERM, -KVM_ENOSYS as RAX holds them (docs/heki.md §1.3). */
export const RET_EINVAL = u64(-22n);
export const RET_EPERM = u64(-1n);
export const RET_ENOSYS = u64(-1000n);

/** The host model of docs/heki.md §8: CR0 0x80050033, CR4 with SMEP|SMAP|UMIP|FSGSBASE and not CET. */
export const HOST_CR4 = X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_UMIP | X86_CR4_FSGSBASE;

export class ScriptedHost implements SessionHandler {
  readonly msrs = new Map<number, ScriptedMsr>();
  readonly cr = new Map<number, bigint>([[0, 0x80050033n], [2, 0n], [3, 0x1000n], [4, 0n], [8, 0n]]);
  readonly cpuidLeaves = new Map<string, [number, number, number, number]>();
  /** Every op the handler ran, batch items included, in order. */
  readonly log: HandlerRequest[] = [];

  /** Whether nr 13 is KVM_HC_LOCK_CR_UPDATE (a CONFIG_HEKI host) or falls to -KVM_ENOSYS. */
  heki = true;
  /** The version the version query returns (HEKI_ABI_VERSION is 1). */
  hekiVersion = 1n;
  hostCr0 = DEFAULT_HOST_CR0;
  hostCr4 = HOST_CR4;
  /** The host kernel's cr4_pinned_mask. */
  pinnableMask = HEKI_CR4_PINNABLE_MASK_V2;
  pinnedCr0 = 0n;
  pinnedCr4 = 0n;

  /** A host-side refusal for a request, thrown instead of running it. */
  refuse: ((request: HandlerRequest) => Error | undefined) | undefined;
  /** A result of its own for a request (e.g. a fault the script does not model), instead of running it. */
  answer: ((request: HandlerRequest) => unknown) | undefined;
  /** Answers the hello; default: accept. */
  helloReply: (hello: HelloParams) => HelloReply | Promise<HelloReply> = (hello) => ({
    server: 'scripted', vm: hello.vm, vcpu: hello.vcpu, vcpus: 2, profile: 'v2',
  });
  /** Delays every answer (to test timeouts): a promise that settles when the answer may go. */
  stall: (() => Promise<void>) | undefined;

  hello(_session: ServerSession, hello: HelloParams): HelloReply | Promise<HelloReply> {
    return this.helloReply(hello);
  }

  async request(_session: ServerSession, request: HandlerRequest): Promise<unknown> {
    if (this.stall) await this.stall();
    return this.run(request);
  }

  run(request: HandlerRequest): unknown {
    this.log.push(request);
    const refusal = this.refuse?.(request);
    if (refusal) throw refusal;
    const answer = this.answer?.(request);
    if (answer !== undefined) return answer;
    const user = (request as { cpl?: number }).cpl === 3;
    switch (request.op) {
      case 'rdmsr': {
        if (user) return { fault: GP0, exits: [] };
        const msr = this.msrs.get(request.index);
        if (msr?.filtered) return { fault: GP0, exits: [filterExit('KVM_EXIT_X86_RDMSR', request.index, 0n)] };
        if (!msr || msr.readable === false) return { fault: GP0, exits: [] };
        return { value: msr.value, exits: [] };
      }
      case 'wrmsr': {
        if (user) return { fault: GP0, exits: [] };
        const msr = this.msrs.get(request.index);
        if (msr?.filtered) return { fault: GP0, exits: [filterExit('KVM_EXIT_X86_WRMSR', request.index, request.value)] };
        if (!msr || msr.writable === false) return { fault: GP0, exits: [] };
        msr.value = request.value;
        return { exits: [] };
      }
      case 'readCr':
        return user ? { fault: GP0, exits: [] } : { value: this.cr.get(request.cr)!, exits: [] };
      case 'writeCr':
        return user ? { fault: GP0, exits: [] } : this.writeCr(request.cr, request.value);
      case 'lmsw': {
        if (user) return { fault: GP0, exits: [] };
        // LMSW loads CR0[3:0] but cannot clear PE (SDM vol. 2A, LMSW).
        const cr0 = this.cr.get(0)!;
        return this.writeCr(0, (cr0 & ~0xfn) | BigInt(request.value & 0xf) | (cr0 & 1n));
      }
      case 'clts':
        return user ? { fault: GP0, exits: [] } : this.writeCr(0, this.cr.get(0)! & ~X86_CR0_TS);
      case 'cpuid': {
        const [eax, ebx, ecx, edx] = this.cpuidLeaves.get(`${request.leaf}.${request.subleaf ?? 0}`) ?? [0, 0, 0, 0];
        return { eax, ebx, ecx, edx, exits: [] };
      }
      case 'hypercall':
        return { ret: this.hypercall(request.nr, request.args ?? [], user), exits: [] };
      case 'exec':
        return this.exec(request.code, request.regs ?? {});
      default:
        throw new ProtocolError('forbidden', `${request.op} is not a guest op`);
    }
  }

  /** docs/heki.md §2.2: a write that clears a pinned bit takes #GP(0) and changes nothing. */
  private writeCr(cr: number, value: bigint): { fault?: Fault; exits: Exit[] } {
    const pinned = cr === 0 ? this.pinnedCr0 : cr === 4 ? this.pinnedCr4 : 0n;
    if ((value & pinned) !== pinned) return { fault: GP0, exits: [] };
    this.cr.set(cr, value);
    return { exits: [] };
  }

  /** kvm_emulate_hypercall() (docs/heki.md §1.3): CPL first, then the dispatch. */
  private hypercall(nr: bigint, args: bigint[], user: boolean): bigint {
    if (user) return RET_EPERM;
    const [a0 = 0n, a1 = 0n, a2 = 0n] = args;
    if (nr !== 13n || !this.heki) return RET_ENOSYS;
    if (a0 > 0xffff_ffffn) return RET_EINVAL;
    return this.hekiLockCr(a0, a1, a2);
  }

  /** heki_lock_cr(), docs/heki.md §1.4, in its order. */
  private hekiLockCr(cr: bigint, pin: bigint, flags: bigint): bigint {
    if (flags !== 0n) return flags === 1n && cr === 0n && pin === 0n ? u64(this.hekiVersion) : RET_EINVAL;
    if (pin === 0n) return RET_EINVAL;
    if (cr === 0n) {
      if ((pin & X86_CR0_WP) === 0n) return RET_EINVAL;
      if ((pin & this.hostCr0) !== pin) return RET_EINVAL;
      this.pinnedCr0 |= pin;
      return 0n;
    }
    if (cr === 4n) {
      if ((pin & this.pinnableMask) !== pin) return RET_EINVAL;
      this.pinnedCr4 |= pin & this.hostCr4;
      return 0n;
    }
    return RET_EINVAL;
  }

  /**
   * Recognises three programs: `hlt` (f4) stops on hlt, `ud2` (0f 0b) stops on #UD, anything else
   * runs off its end. The registers come back as given (rip is where it stopped).
   */
  private exec(code: Uint8Array, given: Partial<Record<string, bigint>>): unknown {
    const regs = Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, given[n] ?? 0n])) as Regs;
    regs.rflags = 2n;
    regs.rip = 0x1000n + BigInt(code.length);
    if (code[0] === 0xf4) return { stop: 'hlt', regs: { ...regs, rip: 0x1001n }, exits: [] };
    if (code[0] === 0x0f && code[1] === 0x0b) return { stop: 'fault', regs: { ...regs, rip: 0x1000n }, fault: { vector: UD_VECTOR }, exits: [] };
    return { stop: 'end', regs, exits: [] };
  }
}

function filterExit(reason: string, index: number, data: bigint): Exit {
  return { reason, msr: { reason: 'FILTER', index, data, error: 1 } };
}

/** A request frame as the client sent it. */
export interface SentFrame {
  op: string;
  /** For a batch: the op of each item. */
  ops?: string[];
  /** Body length. */
  bytes: number;
}

/** The client's end of a connection, recording every frame written to it. */
export function recordingFrames(inner: Connection): { connection: Connection; frames: SentFrame[] } {
  const frames: SentFrame[] = [];
  const connection: Connection = {
    get peer() {
      return inner.peer;
    },
    get closed() {
      return inner.closed;
    },
    write(chunk) {
      const body = chunk.subarray(4);
      const value = decodeMsgpack(body, 64) as { op: string; ops?: { op: string }[] };
      frames.push({ op: value.op, ...(value.ops ? { ops: value.ops.map((o) => o.op) } : {}), bytes: body.length });
      inner.write(chunk);
    },
    onData: (listener) => inner.onData(listener),
    onClose: (listener) => inner.onClose(listener),
    close: () => inner.close(),
  };
  return { connection, frames };
}

/** A scripted host on one end of a memory pair and a connected Guest on the other. */
export async function connectedGuest(
  host = new ScriptedHost(),
  options?: ConnectOptions,
): Promise<{ guest: Guest; host: ScriptedHost; frames: SentFrame[] }> {
  const [clientEnd, serverEnd] = createMemoryPair();
  new ServerSession(serverEnd, host, options?.maxFrame === undefined ? {} : { maxFrame: options.maxFrame });
  const { connection, frames } = recordingFrames(clientEnd);
  const guest = await connect(connection, options);
  frames.length = 0; // the hello
  return { guest, host, frames };
}
