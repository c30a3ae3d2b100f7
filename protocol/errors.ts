/**
 * Error codes and the typed error that carries them. The table below is the one list of codes
 * (PROTOCOL.md §7 mirrors it and a test checks that the two agree).
 */

/** Code → when it is used. Codes marked "local" are raised by this library and never sent. */
export const ERROR_CODES = {
  bad_frame: 'the frame body is not exactly one well-formed value of the protocol\'s msgpack subset',
  frame_too_large: 'the announced frame length exceeds the receiver\'s maximum; the connection is closed',
  too_deep: 'arrays and maps nest deeper than the receiver\'s limit',
  invalid_message: 'a field is missing, unknown, of the wrong type or out of range (`path` names it)',
  unknown_op: 'the op is not one this protocol version defines',
  hello_required: 'a request other than hello came before a successful hello',
  already_greeted: 'a second hello on a connection that already has one (or has one in progress)',
  version_mismatch: 'the peer speaks another protocol version',
  forbidden: 'the op belongs to the other role (guest ops on a control connection or the reverse)',
  bad_token: 'the control token is wrong',
  not_found: 'a VM, vCPU or subscription that does not exist',
  duplicate_id: 'the id is already used by an outstanding request on this connection',
  kvm_error: 'the KVM model refused the operation; `errno` names the errno (e.g. EINVAL)',
  limit: 'a resource limit was reached (in-flight requests, response size, VM or vCPU count)',
  internal: 'the server failed while handling the request',
  already_exists: 'createVm names a VM that exists already (and does not ask to replace it)',
  vm_killed: 'the VM was killed (the policy\'s onDenial or onShutdown "kill"): this operation and every later one on it fail until a resetVm',
  vm_reset: 'the VM was reset while the operation waited (paused, or in an exit): the operation was abandoned',
  vcpu_init: 'the vCPU got INIT (control initVcpu) while the operation waited (paused, or in an exit): the operation was abandoned',
  guest_shutdown: 'the vCPU shut down (triple fault) during an operation that has no `stop` to report it; the policy\'s onShutdown says what became of the VM',
  invalid_guest_state: 'KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY) with the state a control client loaded; initVcpu or resetVm mends it',
  host_unsupported: 'the host\'s KVM cannot do what the operation needs (a real kernel that never completes a CPL0 hypercall); the message names what it lacks',
  connection_closed: '(local) the connection closed before the response arrived',
  bad_url: '(local) an endpoint URL that connect() or listen() cannot use',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Names a Linux errno, as in `Errno` of abi/errno.ts: "EINVAL", "E2BIG". */
export const ERRNO_NAME_PATTERN = /^E[A-Z0-9]{1,31}$/;

export interface ProtocolErrorDetails {
  /** JSON-ish path of the offending field, e.g. `ranges[3].bitmap`. */
  path?: string;
  /** errno name for `kvm_error`. */
  errno?: string;
}

/**
 * A typed protocol error: what the server sends in `error`, and what the client rejects with.
 * `code` is one of ERROR_CODES for errors raised here; errors received from a peer keep
 * whatever snake_case code the peer sent (see RemoteError).
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode | (string & {});
  readonly path: string | undefined;
  readonly errno: string | undefined;

  constructor(code: ErrorCode | (string & {}), message: string, details: ProtocolErrorDetails = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.path = details.path;
    this.errno = details.errno;
  }
}

/** An error response from the peer (the request was delivered and answered with an error). */
export class RemoteError extends ProtocolError {
  constructor(code: string, message: string, details: ProtocolErrorDetails = {}) {
    super(code, message, details);
    this.name = 'RemoteError';
  }
}

/**
 * What a thrown value means on the wire: a ProtocolError keeps its code; anything carrying an
 * errno name (host/kvm's KvmError does) is a `kvm_error`; everything else is `internal`, so
 * that a handler bug becomes an answer and never takes the process down.
 */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const errno = typeof error === 'object' && error !== null ? (error as { errno?: unknown }).errno : undefined;
  if (typeof errno === 'string' && ERRNO_NAME_PATTERN.test(errno)) {
    return new ProtocolError('kvm_error', message || errno, { errno });
  }
  return new ProtocolError('internal', `internal error: ${message}`);
}
