/**
 * A memory mapping the backend reads and writes in place (guest memory, kvm_run) whose views
 * can never outlive it: touching unmapped memory kills Node with SIGSEGV, not an exception
 * (docs/real-kvm.md §3). So the range is never unmapped while anything can reach
 * it. `release()` (at close) replaces its contents with fresh anonymous memory over the same
 * addresses (MAP_FIXED): the pages and, for a file mapping, the hold on the file (a vCPU's
 * kvm_run keeps the VM alive) go at once, while any view still held reads zeros. The range
 * itself is unmapped only when its ArrayBuffer has been collected, when no view is left.
 */
import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, type Libc, type Pointer,
} from './libc.js';
import { errnoError } from './errno.js';

interface Unmap {
  readonly libc: Libc;
  readonly pointer: Pointer;
  readonly length: number;
}

const unmapWhenCollected = new FinalizationRegistry<Unmap>(({ libc, pointer, length }) => {
  libc.munmap(pointer, length);
});

export class Mapping {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** The host virtual address of the first byte. */
  readonly address: bigint;
  private released = false;

  private constructor(
    private readonly libc: Libc,
    pointer: Pointer,
    readonly length: number,
  ) {
    const buffer = libc.view(pointer, length);
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.address = libc.address(pointer);
    unmapWhenCollected.register(buffer, { libc, pointer, length });
  }

  /** Private anonymous memory, zero-filled, reserved lazily (guest RAM). */
  static anonymous(libc: Libc, length: number, call: string): Mapping {
    const p = libc.mmap(0n, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p === null) throw errnoError(libc.errno(), call, `mmap of ${length} bytes of guest memory`);
    return new Mapping(libc, p, length);
  }

  /** A shared mapping of a file descriptor from offset 0 (a vCPU's kvm_run). */
  static ofFile(libc: Libc, fd: number, length: number, call: string): Mapping {
    const p = libc.mmap(0n, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p === null) throw errnoError(libc.errno(), call, `mmap of ${length} bytes of fd ${fd}`);
    return new Mapping(libc, p, length);
  }

  /** Drops the contents and any hold on a file; the addresses stay mapped (see above). */
  release(): void {
    if (this.released) return;
    this.released = true;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
    // On failure the old mapping simply stays until the buffer is collected: still safe.
    this.libc.mmap(this.address, this.length, PROT_READ | PROT_WRITE, flags, -1, 0);
  }
}
