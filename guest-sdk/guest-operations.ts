/**
 * The guest operations as methods, shared by a Guest (each call is one request) and a Batch
 * (calls are queued and sent in one frame). Every method takes an optional trailing
 * `{ cpl }`; the plain form resolves to the value and rejects with a GuestFault when the
 * guest action raised an exception, the `*Safe` form resolves to a SafeResult either way.
 * Both reject with a HostError when the host refused the operation.
 */
import type { CrNumber, OpOptions, U64 } from './arguments.js';
import {
  CLTS, CPUID, type CpuidResult, EXEC, type ExecOptions, type ExecResult, HYPERCALL, type HypercallArgs, LMSW, type OpKind,
  READ_CR, RDMSR, type SafeResult, WRITE_CR, WRMSR,
} from './operations.js';

export abstract class GuestOperations {
  /**
   * Runs (or queues) one operation. `a`, `b`, `c` are the caller's arguments, checked by
   * `kind.params`; `safe` picks the SafeResult form.
   */
  protected abstract submit(kind: OpKind, safe: boolean, a?: unknown, b?: unknown, c?: unknown): Promise<any>;

  /** RDMSR of `index` (ECX): the 64-bit EDX:EAX. */
  rdmsr(index: number, options?: OpOptions): Promise<bigint> {
    return this.submit(RDMSR, false, index, options);
  }
  rdmsrSafe(index: number, options?: OpOptions): Promise<SafeResult<bigint>> {
    return this.submit(RDMSR, true, index, options);
  }

  /** WRMSR of `value` to `index`. */
  wrmsr(index: number, value: U64, options?: OpOptions): Promise<void> {
    return this.submit(WRMSR, false, index, value, options);
  }
  wrmsrSafe(index: number, value: U64, options?: OpOptions): Promise<SafeResult<undefined>> {
    return this.submit(WRMSR, true, index, value, options);
  }

  /** MOV from CR`cr`. */
  readCr(cr: CrNumber, options?: OpOptions): Promise<bigint> {
    return this.submit(READ_CR, false, cr, options);
  }
  readCrSafe(cr: CrNumber, options?: OpOptions): Promise<SafeResult<bigint>> {
    return this.submit(READ_CR, true, cr, options);
  }

  /** MOV to CR`cr` (checked by the host as `kvm_set_cr0/4()` and Heki's pins check it). */
  writeCr(cr: CrNumber, value: U64, options?: OpOptions): Promise<void> {
    return this.submit(WRITE_CR, false, cr, value, options);
  }
  writeCrSafe(cr: CrNumber, value: U64, options?: OpOptions): Promise<SafeResult<undefined>> {
    return this.submit(WRITE_CR, true, cr, value, options);
  }

  /** LMSW: loads CR0 bits 0-3 from a 16-bit value. */
  lmsw(value: number, options?: OpOptions): Promise<void> {
    return this.submit(LMSW, false, value, options);
  }
  lmswSafe(value: number, options?: OpOptions): Promise<SafeResult<undefined>> {
    return this.submit(LMSW, true, value, options);
  }

  /** CLTS: clears CR0.TS. */
  clts(options?: OpOptions): Promise<void> {
    return this.submit(CLTS, false, options);
  }
  cltsSafe(options?: OpOptions): Promise<SafeResult<undefined>> {
    return this.submit(CLTS, true, options);
  }

  /** CPUID of `leaf` (EAX) and `subleaf` (ECX, 0 when absent). */
  cpuid(leaf: number, subleaf?: number, options?: OpOptions): Promise<CpuidResult>;
  cpuid(leaf: number, options: OpOptions): Promise<CpuidResult>;
  cpuid(leaf: number, subleaf?: number | OpOptions, options?: OpOptions): Promise<CpuidResult> {
    return this.submit(CPUID, false, leaf, subleaf, options);
  }
  cpuidSafe(leaf: number, subleaf?: number, options?: OpOptions): Promise<SafeResult<CpuidResult>>;
  cpuidSafe(leaf: number, options: OpOptions): Promise<SafeResult<CpuidResult>>;
  cpuidSafe(leaf: number, subleaf?: number | OpOptions, options?: OpOptions): Promise<SafeResult<CpuidResult>> {
    return this.submit(CPUID, true, leaf, subleaf, options);
  }

  /**
   * A hypercall: `nr` in RAX, `args` in RBX, RCX, RDX, RSI (missing ones are 0), optionally
   * followed by `{ cpl, insn }`. Resolves to RAX afterwards as a u64: read a negative kernel
   * return with `asSigned()` or `kvmErrno()`.
   */
  hypercall(nr: U64, ...args: HypercallArgs): Promise<bigint> {
    return this.submit(HYPERCALL, false, nr, args);
  }
  hypercallSafe(nr: U64, ...args: HypercallArgs): Promise<SafeResult<bigint>> {
    return this.submit(HYPERCALL, true, nr, args);
  }

  /**
   * Runs raw 64-bit code placed by the VMM, with `regs` loaded first. A fault ends the code
   * and is reported in the result (stop `fault`); exec never rejects with a GuestFault.
   */
  exec(code: Uint8Array, options?: ExecOptions): Promise<ExecResult> {
    return this.submit(EXEC, false, code, options);
  }
}
