/**
 * Random instruction strings for the core, biased towards what breaks a machine: system
 * instructions, prefixes, and stores aimed at the boot image's IDT, page tables, GDT, TSS and
 * stacks (boot/layout.ts), mixed with plain random bytes.
 */
import { layout as L } from '../../host/vmm/boot/index.js';
import type { Random } from './random.js';

/** Instruction openings worth more than their share of random bytes (operands follow at random). */
const OPENINGS: readonly number[][] = [
  [0x0f, 0x01], [0x0f, 0x00], [0x0f, 0x20], [0x0f, 0x22], [0x0f, 0x30], [0x0f, 0x32], [0x0f, 0x05], [0x0f, 0x07],
  [0x0f, 0x34], [0x0f, 0x35], [0x0f, 0xa2], [0x0f, 0x0b], [0x0f, 0x06], [0x0f, 0x01, 0xc1], [0x0f, 0x01, 0xd9],
  [0x0f, 0x01, 0xf8], [0x0f, 0x01, 0x38], [0x48, 0xcf], [0xcf], [0xcd], [0xcc], [0xf4], [0xfa], [0xfb], [0x9c], [0x9d],
  [0xe4], [0xe6], [0xec], [0xee], [0x8e], [0xca], [0xcb], [0xff], [0xf3, 0xa4], [0xf3, 0x48, 0xab], [0xa5], [0xc3],
  [0xe8], [0xe9], [0xeb], [0x74], [0x75], [0xe2], [0x48, 0x89], [0x48, 0x8b], [0x48, 0xc7], [0x80], [0x81], [0x83],
  [0x48, 0x0f, 0xba], [0x0f, 0xb1], [0xf0, 0x0f, 0xb1], [0x86], [0x87], [0x48, 0xf7], [0xd3], [0x0f, 0xa3], [0x0f, 0xab],
];
const PREFIXES: readonly number[] = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x64, 0x65, 0x36, 0x40, 0x41, 0x44, 0x48, 0x49, 0x4c, 0x4f];

/** Addresses a hostile store likes: the IDT's gates, page-table entries, the GDT, the TSS, stacks, NULL. */
function target(r: Random): number {
  switch (r.below(7)) {
    case 0: return L.IDT + r.below(256) * 16 + r.pick([0, 4, 6, 8]);
    case 1: return L.PML4 + r.below(4) * 8 + r.pick([0, 4, 7]);
    case 2: return L.PT0 + r.below(512) * 8 + r.pick([0, 4, 7]);
    case 3: return L.GDT + r.below(12) * 8 + r.pick([0, 4, 5]);
    case 4: return L.tssAddress(0) + r.below(13) * 8;
    case 5: return L.exceptionStackTop(0) - r.below(64) * 8;
    default: return r.pick([0, 8, 0xfff, L.STUBS + r.below(256) * L.STUB_STRIDE]);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A piece of code: random bytes, an opening with random operands, or a store to a hostile target. */
function piece(r: Random, out: number[]): void {
  switch (r.below(5)) {
    case 0:
      out.push(...r.bytes(r.between(1, 8)));
      return;
    case 1:
      if (r.chance(0.3)) out.push(r.pick(PREFIXES));
      out.push(...r.pick(OPENINGS), ...r.bytes(r.between(0, 6)));
      return;
    case 2: {
      // mov eax, target; then a store or read-modify-write through [rax]
      out.push(0xb8, ...le32(target(r)));
      const op = r.pick([[0xc7, 0x00, ...r.bytes(4)], [0x48, 0xc7, 0x00, ...r.bytes(4)], [0x00, 0x00], [0x48, 0x0f, 0xba, 0x28, r.below(64)], [0x48, 0x0f, 0xba, 0x30, r.below(64)], [0x88, 0x08], [0xf6, 0x10]]);
      out.push(...op);
      return;
    }
    case 3:
      // mov rax, imm64 (often an interesting value), then a system use of it
      out.push(0x48, 0xb8, ...r.bytes(8));
      if (r.chance(0.5)) out.push(...r.pick([[0x0f, 0x22, 0xe0], [0x0f, 0x22, 0xc0], [0x0f, 0x22, 0xd8], [0x0f, 0x01, 0x18], [0x0f, 0x01, 0x10], [0x0f, 0x00, 0xd8], [0x48, 0x89, 0xc4], [0xff, 0xe0], [0xff, 0xd0]]));
      return;
    default:
      // a fault on purpose: NULL read, #UD, #DE, #GP from a non-canonical address, INT n
      out.push(...r.pick([[0x31, 0xc9, 0x8a, 0x09], [0x0f, 0x0b], [0x31, 0xc9, 0xf7, 0xf1], [0x48, 0xb8, 0, 0, 0, 0, 0, 0x80, 0, 0x8a, 0x00], [0xcd, r.below(256)], [0xcc]]));
  }
}

/** A random instruction string of 1 to `maxPieces` pieces. */
export function randomCode(r: Random, maxPieces = 8): Uint8Array {
  const out: number[] = [];
  const n = r.between(1, maxPieces);
  for (let i = 0; i < n; i++) piece(r, out);
  return Uint8Array.from(out);
}
