/**
 * One open KVM file descriptor (/dev/kvm, a VM, a vCPU) and the ioctls on it. After `close()`
 * every use throws KvmError EBADF, as the kernel answers a closed descriptor, and nothing
 * reaches the kernel with a number the process may since have reused for another file.
 */
import { Errno } from '../../../protocol/abi.js';
import { closedError, errnoError } from './errno.js';
import type { Libc, Pointer } from './libc.js';

export class KvmFd {
  private open = true;

  constructor(
    readonly libc: Libc,
    private readonly fd: number,
    /** What the descriptor is, for messages: "/dev/kvm", "the VM", "vCPU 0". */
    readonly what: string,
  ) {}

  get closed(): boolean {
    return !this.open;
  }

  /** Throws EBADF once closed. */
  check(call: string): void {
    if (!this.open) throw closedError(call, this.what);
  }

  /** The descriptor number, for a call about to be made (EBADF once closed). */
  number(call: string): number {
    if (!this.open) throw closedError(call, this.what);
    return this.fd;
  }

  /**
   * An ioctl with an integer argument; its non-negative result, or a KvmError. A stray signal
   * can make any of them fail with EINTR before it did anything (KVM_CREATE_VM did, under the
   * profiler's SIGPROF): those are retried. KVM_RUN does not come here (VcpuFd.run()).
   */
  ioctlValue(name: string, request: number, arg: number | bigint = 0): number {
    const fd = this.number(name);
    for (;;) {
      const r = this.libc.ioctlValue(fd, request, arg);
      if (r >= 0) return r;
      const errno = this.libc.errno();
      if (errno !== Errno.EINTR) throw errnoError(errno, name, `on ${this.what}`);
    }
  }

  /** An ioctl whose argument is a structure; its non-negative result, or a KvmError (EINTR retried). */
  ioctlPointer(name: string, request: number, arg: Uint8Array | Pointer): number {
    const fd = this.number(name);
    for (;;) {
      const r = this.libc.ioctlPointer(fd, request, arg);
      if (r >= 0) return r;
      const errno = this.libc.errno();
      if (errno !== Errno.EINTR) throw errnoError(errno, name, `on ${this.what}`);
    }
  }

  /** Closes the descriptor once; later calls throw EBADF. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.libc.close(this.fd);
  }
}
