/**
 * One open KVM file descriptor (/dev/kvm, a VM, a vCPU) and the ioctls on it. After `close()`
 * every use throws KvmError EBADF, as the kernel answers a closed descriptor, and nothing
 * reaches the kernel with a number the process may since have reused for another file.
 */
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

  /** An ioctl with an integer argument; its non-negative result, or a KvmError. */
  ioctlValue(name: string, request: number, arg: number | bigint = 0): number {
    const r = this.libc.ioctlValue(this.number(name), request, arg);
    if (r < 0) throw errnoError(this.libc.errno(), name, `on ${this.what}`);
    return r;
  }

  /** An ioctl whose argument is a structure; its non-negative result, or a KvmError. */
  ioctlPointer(name: string, request: number, arg: Uint8Array | Pointer): number {
    const r = this.libc.ioctlPointer(this.number(name), request, arg);
    if (r < 0) throw errnoError(this.libc.errno(), name, `on ${this.what}`);
    return r;
  }

  /** Closes the descriptor once; later calls throw EBADF. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.libc.close(this.fd);
  }
}
