import { Errno, type ErrnoName } from '../../../protocol/abi.js';

/**
 * What a KVM ioctl returns as -errno, as a thrown value: `errno` is the number, `code` its
 * name, and the message names the ioctl and why it failed, e.g.
 * `KVM_X86_SET_MSR_FILTER: EINVAL (22): range 3 has flags 0`.
 */
export class KvmError extends Error {
  readonly errno: number;
  readonly code: ErrnoName;
  readonly ioctl: string;

  constructor(code: ErrnoName, ioctl: string, reason: string) {
    super(`${ioctl}: ${code} (${Errno[code]}): ${reason}`);
    this.name = 'KvmError';
    this.code = code;
    this.errno = Errno[code];
    this.ioctl = ioctl;
  }

  /** The error for a negative kernel return value, e.g. -14 → EFAULT. */
  static fromNegativeErrno(ret: number, ioctl: string, reason: string): KvmError {
    const name = (Object.keys(Errno) as ErrnoName[]).find((k) => Errno[k] === -ret);
    if (name === undefined) throw new RangeError(`no errno name for ${ret}`);
    return new KvmError(name, ioctl, reason);
  }
}
