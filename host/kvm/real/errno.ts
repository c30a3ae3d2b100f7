/**
 * A failed system call as the model reports a failed ioctl: a KvmError with the errno's name
 * (protocol/abi.ts Errno), the call, and what was asked.
 */
import { Errno, type ErrnoName } from '../../../protocol/abi.js';
import { KvmError } from '../api/errors.js';

const NAMES = new Map<number, ErrnoName>((Object.keys(Errno) as ErrnoName[]).map((name) => [Errno[name], name]));

/**
 * The KvmError for `errno` after `call` failed. An errno pinbox has no name for is reported
 * as EIO with its number in the message (none of the calls made here is known to return one).
 */
export function errnoError(errno: number, call: string, what: string): KvmError {
  const name = NAMES.get(errno);
  return name !== undefined ? new KvmError(name, call, what) : new KvmError('EIO', call, `${what} (the kernel answered errno ${errno})`);
}

/** What an object that was closed throws, as the kernel answers a closed file descriptor. */
export function closedError(call: string, what: string): KvmError {
  return new KvmError('EBADF', call, `${what} was closed`);
}
