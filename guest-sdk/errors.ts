/**
 * The three ways a guest operation can fail, kept apart because callers react differently:
 *
 * - GuestFault: the guest action ran and raised an exception (#GP, #UD…), as a guest kernel's
 *   `rdmsr()` would oops. The `*Safe` forms return the fault as data instead.
 * - HostError: the host did not run the action, or the answer never came: a protocol or KVM
 *   refusal (`kvm_error` with its errno), a closed connection, a timeout.
 * - InvalidArgumentError: the caller's arguments cannot form a request (nothing was sent).
 */
import { type ErrorCode, type Exit, type Fault, ProtocolError, RemoteError } from '../protocol/index.js';
import { describeFault } from '../protocol/notation.js';

/** A guest exception raised by an operation that has no fault-returning form in use. */
export class GuestFault extends Error {
  /** The exception vector (13 for #GP). */
  readonly vector: number;
  /** The error code the guest's IDT received, for vectors that push one. */
  readonly errorCode: number | undefined;
  /** The user-space exits the faulting action caused (e.g. a filtered RDMSR's `KVM_EXIT_X86_RDMSR`). */
  readonly exits: Exit[];
  /** Exits the host left out of `exits` (more than 1024). */
  readonly exitsDropped: number;

  /**
   * @param op the protocol op (`rdmsr`)
   * @param operation the op with its arguments, as the message names it (`rdmsr 0x10`)
   * @param fault the exception as the host reported it
   */
  constructor(readonly op: string, readonly operation: string, readonly fault: Fault, exits: Exit[], exitsDropped = 0) {
    super(`${operation} raised ${describeFault(fault)}`);
    this.name = 'GuestFault';
    this.vector = fault.vector;
    this.errorCode = fault.errorCode;
    this.exits = exits;
    this.exitsDropped = exitsDropped;
  }
}

/**
 * Codes a HostError carries: every protocol error code (PROTOCOL.md §7; a host may send codes
 * this version does not know), plus two the SDK raises itself: `timeout` (the host answered
 * nothing for `timeoutMs`) and `connect_failed` (the transport could not be opened).
 */
export type HostErrorCode = ErrorCode | 'timeout' | 'connect_failed' | (string & {});

/** The host refused an operation, or its answer could not be had. */
export class HostError extends Error {
  readonly code: HostErrorCode;
  /** The offending request field, as the host named it (`index`, `ops[3].value`). */
  readonly path: string | undefined;
  /** With `kvm_error`: the errno the KVM model returned (`EINVAL`, `E2BIG`…). */
  readonly errno: string | undefined;
  /** True when the host sent this error; false when the SDK concluded it (closed connection, timeout, invalid answer). */
  readonly remote: boolean;

  /**
   * @param operation what was asked (`rdmsr 0x10`, `hello`, `batch of 3 ops`)
   * @param cause the protocol error behind it; anything else is reported as `internal`
   */
  constructor(readonly operation: string, cause: unknown) {
    const error = cause instanceof ProtocolError ? cause : undefined;
    const code = error?.code ?? 'internal';
    const remote = cause instanceof RemoteError;
    const detail = error?.errno !== undefined ? `${code} ${error.errno}` : code;
    const text = error?.message ?? (cause instanceof Error ? cause.message : String(cause));
    super(`${operation}: ${remote ? 'the host refused it: ' : ''}${text} [${detail}]`, { cause });
    this.name = 'HostError';
    this.code = code;
    this.path = error?.path;
    this.errno = error?.errno;
    this.remote = remote;
  }
}

/** An argument that cannot form a request; the operation was not sent. */
export class InvalidArgumentError extends TypeError {
  /**
   * @param op the SDK method (`wrmsr`)
   * @param argument the argument at fault (`value`, `options.cpl`, `ranges[2].last`)
   */
  constructor(readonly op: string, readonly argument: string, problem: string) {
    super(`${op}: ${argument} ${problem}`);
    this.name = 'InvalidArgumentError';
  }
}
