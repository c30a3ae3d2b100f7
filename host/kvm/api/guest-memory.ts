/**
 * A VM's guest-physical memory as user space reaches it: the one memory slot, from GPA 0, which
 * user space reads and writes while the vCPUs are stopped — to build the boot image, load an
 * image, place code and read back what the guest left. The model's is host/x86's
 * PhysicalMemory; a real VM's is the anonymous mapping it gave KVM (KVM_SET_USER_MEMORY_REGION).
 *
 * Addresses are numbers (a slot is at most 4 GiB), values little-endian, 64-bit ones bigint. An
 * access outside memory is a RangeError: a host bug, never a guest event.
 */
import { PAGE_MASK as FRAME_MASK, PAGE_SHIFT as FRAME_SHIFT, PAGE_SIZE as FRAME_SIZE } from '../../x86/memory.js';

/** Guest memory is handed out in the processor's 4 KiB frames. */
export const PAGE_SHIFT: number = FRAME_SHIFT;
export const PAGE_SIZE: number = FRAME_SIZE;
export const PAGE_MASK: number = FRAME_MASK;

export interface GuestMemory {
  /** Bytes of memory: a multiple of PAGE_SIZE. */
  readonly size: number;
  /** size / PAGE_SIZE */
  readonly frameCount: number;
  contains(gpa: number, length?: number): boolean;
  /** A copy of `length` bytes at `gpa`. */
  readBytes(gpa: number, length: number): Uint8Array;
  writeBytes(gpa: number, data: Uint8Array): void;
  read8(gpa: number): number;
  read16(gpa: number): number;
  read32(gpa: number): number;
  read64(gpa: number): bigint;
  write8(gpa: number, value: number): void;
  write16(gpa: number, value: number): void;
  write32(gpa: number, value: number): void;
  /** Stores the low 64 bits of `value`. */
  write64(gpa: number, value: bigint): void;
  /**
   * A little-endian view of one frame, read and written in place, for a structure user space
   * touches at every guest operation (the VMM's fault record, an IRET frame). Whoever writes
   * through it calls noteWrite(frame) afterwards.
   */
  frameView(frame: number): DataView;
  /**
   * After writing through frameView(): the model drops the instructions its core decoded from
   * that frame (a real processor snoops its own memory; a real slot needs nothing).
   */
  noteWrite(frame: number): void;
  /** Whether the frame may hold data: false only when it is known to read as zeros. */
  isAllocated(frame: number): boolean;
}
