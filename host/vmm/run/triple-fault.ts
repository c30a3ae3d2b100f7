/**
 * A triple fault told as a kernel developer reads it off QEMU's `-d int,cpu_reset`: each
 * exception of the chain (vector, error code, RIP, CR2 for #PF) and the IDT gate its delivery
 * read — its handler, selector, type, DPL, IST and P bit, or why there was none (beyond
 * IDTR.limit, on a page the walk cannot reach). The gate types are SDM vol. 3A §3.5 table 3-2's
 * IA-32e entries.
 */
import { describeFault, hex } from '../../../protocol/notation.js';
import type { ChainedException, IdtGateView } from '../../kvm/api/model.js';

const GATE_TYPES: Readonly<Record<number, string>> = { 0xe: 'interrupt gate', 0xf: 'trap gate', 0xc: 'call gate' };

/** One IDT entry in words. */
export function describeGate(vector: number, gate: IdtGateView): string {
  const at = `IDT[${vector}] at ${hex(gate.address)}`;
  switch (gate.kind) {
    case 'beyond-limit':
      return `${at}: beyond the IDT limit ${hex(gate.limit)}`;
    case 'unreadable':
      return `${at}: unreadable (the page walk faults, error code ${hex(gate.pageFault)})`;
    case 'gate': {
      const type = GATE_TYPES[gate.type] ?? `type ${gate.type} (not a 64-bit gate)`;
      const fields = `${type}, handler ${hex(gate.offset)}, selector ${hex(gate.selector)}, DPL ${gate.dpl}, IST ${gate.ist}`;
      return `${at}: ${gate.present ? '' : 'NOT PRESENT, '}${fields}`;
    }
  }
}

/** The chain as lines of text, the first exception first. */
export function describeChain(chain: readonly ChainedException[]): string[] {
  return chain.map((e, k) => {
    const cr2 = e.address !== undefined ? `, CR2 ${hex(e.address)}` : '';
    return `${k + 1}. ${describeFault(e)} at RIP ${hex(e.rip)}${cr2} — ${describeGate(e.vector, e.gate)}`;
  });
}

/** A one-line summary: `#GP(0) → #NP(0x6a) → #DF`. */
export function chainSummary(chain: readonly ChainedException[]): string {
  return chain.map((e) => describeFault(e)).join(' → ');
}
