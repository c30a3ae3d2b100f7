/**
 * The boot-information block `pinbox run` hands a guest image (docs/boot.md §3.4): what a
 * kernel's boot protocol passes its entry — Linux's boot_params in RSI, multiboot's info in EBX —
 * reduced to what a pinbox guest needs: memory size, its vCPU number and how many run, the
 * command line from `--append`, the VM's Heki ABI profile, and where its fault record is. Each
 * vCPU enters with RDI at its own block, so `void kmain(const struct pinbox_boot_info *)` reads
 * it as its first argument (SysV AMD64). The C view is guest-sdk/c/pinbox.h.
 *
 * Layout (little-endian, 64 bytes per vCPU at BOOT_INFO + 64·vcpu):
 *    0 u32 magic "PBOX"     4 u32 version (1)     8 u32 size (64)      12 u32 vcpu
 *   16 u32 vcpus            20 u32 heki profile (2 or 3)               24 u64 memory bytes
 *   32 u64 command line (address of a NUL-terminated string)           40 u32 its length
 *   44 u32 0                48 u64 this vCPU's fault record            56 u64 0
 */
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import { faultRecordAddress, KERNEL_SCRATCH_END, PAGE } from './layout.js';

/** "PBOX" read as a little-endian u32. */
export const BOOT_INFO_MAGIC = 0x584f4250;
export const BOOT_INFO_VERSION = 1;
export const BOOT_INFO_SIZE = 64;
/** The command line's page, then the blocks' page: the top 8 KiB of the kernel scratch. */
export const BOOT_CMDLINE = KERNEL_SCRATCH_END - 2 * PAGE;
export const BOOT_INFO = KERNEL_SCRATCH_END - PAGE;
/** The command line's bytes at most (one page with its NUL). */
export const MAX_CMDLINE = PAGE - 1;

export interface BootInfo {
  readonly vcpus: number;
  readonly memorySize: number;
  readonly hekiProfile: 'v2' | 'v3';
  readonly cmdline: string;
}

export function bootInfoAddress(vcpu: number): number {
  return BOOT_INFO + BOOT_INFO_SIZE * vcpu;
}

/** The command line's UTF-8 bytes, or why it cannot be passed. */
export function cmdlineBytes(cmdline: string): Uint8Array | string {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.length > MAX_CMDLINE) return `the command line is ${bytes.length} bytes; at most ${MAX_CMDLINE} fit its page`;
  if (bytes.includes(0)) return 'the command line holds a NUL byte, which would end it early';
  return bytes;
}

/** Writes the command line and one block per vCPU; the caller has checked the command line. */
export function writeBootInfo(memory: GuestMemory, info: BootInfo): void {
  const line = cmdlineBytes(info.cmdline);
  if (typeof line === 'string') throw new RangeError(line);
  const page = new Uint8Array(PAGE);
  page.set(line);
  memory.writeBytes(BOOT_CMDLINE, page);
  const blocks = new Uint8Array(PAGE);
  const v = new DataView(blocks.buffer);
  for (let vcpu = 0; vcpu < info.vcpus; vcpu++) {
    const o = BOOT_INFO_SIZE * vcpu;
    v.setUint32(o, BOOT_INFO_MAGIC, true);
    v.setUint32(o + 4, BOOT_INFO_VERSION, true);
    v.setUint32(o + 8, BOOT_INFO_SIZE, true);
    v.setUint32(o + 12, vcpu, true);
    v.setUint32(o + 16, info.vcpus, true);
    v.setUint32(o + 20, info.hekiProfile === 'v3' ? 3 : 2, true);
    v.setBigUint64(o + 24, BigInt(info.memorySize), true);
    v.setBigUint64(o + 32, BigInt(BOOT_CMDLINE), true);
    v.setUint32(o + 40, line.length, true);
    v.setBigUint64(o + 48, BigInt(faultRecordAddress(vcpu)), true);
  }
  memory.writeBytes(BOOT_INFO, blocks);
}
