/**
 * A real VM's guest-physical memory: one anonymous mapping given to KVM as memory slot 0 at
 * GPA 0 (KVM_SET_USER_MEMORY_REGION), read and written in place: the GuestMemory of
 * host/kvm/api/guest-memory.ts, with its contract (addresses are numbers, values little-endian,
 * 64-bit ones bigint, and an access outside memory is a RangeError: a host bug, never a guest
 * event). Once the VM is closed every access throws KvmError EBADF; a frame view taken before
 * then reads zeros (mapping.ts).
 */
import { PAGE_SHIFT, PAGE_SIZE, type GuestMemory } from '../api/guest-memory.js';
import type { KvmFd } from './fd.js';
import type { Mapping } from './mapping.js';

const CALL = 'guest memory';

export class MappedMemory implements GuestMemory {
  readonly size: number;
  readonly frameCount: number;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #vm: KvmFd;

  /** @internal Made by the VM that owns the mapping. */
  constructor(mapping: Mapping, vm: KvmFd) {
    this.size = mapping.length;
    this.frameCount = mapping.length >>> PAGE_SHIFT;
    this.#bytes = mapping.bytes;
    this.#view = mapping.view;
    this.#vm = vm;
  }

  contains(gpa: number, length = 1): boolean {
    return Number.isInteger(gpa) && Number.isInteger(length) && gpa >= 0 && length >= 0 && gpa + length <= this.size;
  }

  #check(gpa: number, length: number): void {
    this.#vm.check(CALL);
    if (!this.contains(gpa, length)) {
      throw new RangeError(`guest physical access 0x${gpa.toString(16)}+${length} is outside memory (size 0x${this.size.toString(16)})`);
    }
  }

  /** A copy of `length` bytes at `gpa`. */
  readBytes(gpa: number, length: number): Uint8Array {
    this.#check(gpa, length);
    return this.#bytes.slice(gpa, gpa + length);
  }

  writeBytes(gpa: number, data: Uint8Array): void {
    this.#check(gpa, data.length);
    this.#bytes.set(data, gpa);
  }

  read8(gpa: number): number {
    this.#check(gpa, 1);
    return this.#bytes[gpa]!;
  }

  read16(gpa: number): number {
    this.#check(gpa, 2);
    return this.#view.getUint16(gpa, true);
  }

  read32(gpa: number): number {
    this.#check(gpa, 4);
    return this.#view.getUint32(gpa, true);
  }

  read64(gpa: number): bigint {
    this.#check(gpa, 8);
    return this.#view.getBigUint64(gpa, true);
  }

  write8(gpa: number, value: number): void {
    this.#check(gpa, 1);
    this.#bytes[gpa] = value;
  }

  write16(gpa: number, value: number): void {
    this.#check(gpa, 2);
    this.#view.setUint16(gpa, value, true);
  }

  write32(gpa: number, value: number): void {
    this.#check(gpa, 4);
    this.#view.setUint32(gpa, value, true);
  }

  /** Stores the low 64 bits of `value`, as PhysicalMemory.write64 does. */
  write64(gpa: number, value: bigint): void {
    this.#check(gpa, 8);
    this.#view.setBigUint64(gpa, BigInt.asUintN(64, value), true);
  }

  /** A view of one frame of the mapping, in place. */
  frameView(frame: number): DataView {
    this.#check(frame * PAGE_SIZE, PAGE_SIZE);
    return new DataView(this.#view.buffer, frame * PAGE_SIZE, PAGE_SIZE);
  }

  /** Nothing to do: the processor sees the mapping as it is (no decoded instructions to drop). */
  noteWrite(): void {}

  /** Whether the frame holds a non-zero byte (every frame of the mapping is backed, or can be). */
  isAllocated(frame: number): boolean {
    this.#check(frame * PAGE_SIZE, PAGE_SIZE);
    const words = new BigUint64Array(this.#view.buffer, frame * PAGE_SIZE, PAGE_SIZE / 8);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return true;
    return false;
  }
}
