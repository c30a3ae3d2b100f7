/**
 * The differences between the KVM model and a real kernel that the project has looked into and
 * explained, each with where the explanation is written (docs/real-kvm.md): a host quirk (the
 * host departs from upstream KVM on VMX/SVM, with the evidence) or a model decision (pinbox
 * chose otherwise, and says why). `pinbox conform --diff` labels a divergent step with the
 * first entry that matches it; one that none matches is unexplained.
 *
 * An entry matches by what the step is and what each side did, not by scenario file: the same
 * host behaviour shows wherever a scenario touches it.
 */
import type { BackendHost } from '../kvm/api/backend.js';
import type { Step } from './model.js';
import type { Shown } from './results.js';

export interface KnownDivergence {
  readonly id: string;
  readonly kind: 'host-quirk' | 'model-decision';
  /** One line. */
  readonly title: string;
  /** Where it is explained: "docs/real-kvm.md#…". */
  readonly doc: string;
}

interface Entry extends KnownDivergence {
  /** The vendor module of the hosts it applies to (a host quirk); every host when absent. */
  readonly vendorModule?: string;
  /** Whether a divergent scenario step is this one; absent for what no scenario step can show (tests look it up by id). */
  matches?(step: Step, model: Shown, kvm: Shown): boolean;
}

/** The guest action of a step, whatever its kind (host steps have none). */
function guest(step: Step): Extract<Step, { kind: 'guest' }> | undefined {
  return step.kind === 'guest' ? step : undefined;
}

function fieldOf(shown: Shown, key: string): Shown | undefined {
  return typeof shown === 'object' && shown !== null && !Array.isArray(shown) ? (shown as Record<string, Shown>)[key] : undefined;
}

/** The model took no fault where the host took `fault` (or the reverse, with `modelFault`). */
function faults(model: Shown, kvm: Shown, modelFault: Shown, kvmFault: Shown): boolean {
  return fieldOf(model, 'fault') === modelFault && fieldOf(kvm, 'fault') === kvmFault;
}

const VMCALL = [0x0f, 0x01, 0xc1];
const X2APIC = (index: number): boolean => index >= 0x800 && index <= 0x8ff;
const U32 = (1n << 32n) - 1n;

function hasVmcall(code: Uint8Array): boolean {
  for (let i = 0; i + 3 <= code.length; i++) if (VMCALL.every((b, j) => code[i + j] === b)) return true;
  return false;
}

/** An INT n (CD n) other than INT 3 in the code: #UD from CPL3 on PVM. */
function hasIntN(code: Uint8Array): boolean {
  for (let i = 0; i + 2 <= code.length; i++) if (code[i] === 0xcd && code[i + 1] !== 3) return true;
  return false;
}

/** A quirk of a PVM host (docs/real-kvm.md §10): CPL0 code runs through KVM's emulator. */
function pvm(entry: Omit<Entry, 'kind' | 'vendorModule'>): Entry {
  return { ...entry, kind: 'host-quirk', vendorModule: 'kvm_pvm' };
}

const ENTRIES: readonly Entry[] = [
  pvm({
    id: 'pvm-pat-unchecked',
    title: 'WRMSR to IA32_PAT with a reserved memory type is accepted (upstream: kvm_pat_valid() fails it, so INVAL)',
    doc: 'docs/real-kvm.md#pat-with-a-reserved-memory-type-is-accepted',
    matches: (step, model, kvm) => {
      const a = guest(step)?.action;
      return a?.op === 'wrmsr' && a.index === 0x277 && faults(model, kvm, '#GP(0)', null);
    },
  }),
  pvm({
    id: 'pvm-cpl3-vmcall-gp',
    title: 'VMCALL at CPL3 is #GP(0) (upstream VMX: a VM exit, and kvm_emulate_hypercall() returns -KVM_EPERM)',
    doc: 'docs/real-kvm.md#vmcall-at-cpl3-is-gp',
    matches: (step, model, kvm) => {
      const g = guest(step);
      if (g === undefined || g.cpl !== 3 || !faults(model, kvm, null, '#GP(0)')) return false;
      const a = g.action;
      return (a.op === 'hypercall' && a.insn === 'vmcall') || (a.op === 'exec' && hasVmcall(a.code));
    },
  }),
  pvm({
    id: 'pvm-cr-upper-bits-dropped',
    title: 'MOV to CR0/CR4 with bits 63:32 set drops them instead of #GP(0) (the emulator\'s mk_cr_64() keeps 32 bits; VMX/SVM check all 64)',
    doc: 'docs/real-kvm.md#mov-to-cr0cr4-drops-bits-6332',
    matches: (step, model, kvm) => {
      const a = guest(step)?.action;
      if (a === undefined || !faults(model, kvm, '#GP(0)', null)) return false;
      if (a.op === 'writeCr') return (a.cr === 0 || a.cr === 4) && (a.value & ~U32) !== 0n;
      return a.op === 'writeCrMasked' && (a.cr === 0 || a.cr === 4) && (a.set & ~U32) !== 0n;
    },
  }),
  pvm({
    id: 'pvm-int-n-cpl3-ud',
    title: 'INT n from CPL3 is #UD whatever the gate (KVM\'s emulator does not do protected-mode INT n: emulate_int())',
    doc: 'docs/real-kvm.md#int-n-from-cpl3-is-ud',
    matches: (step, model, kvm) => {
      const g = guest(step);
      return g?.cpl === 3 && g.action.op === 'exec' && hasIntN(g.action.code) && fieldOf(kvm, 'fault') === '#UD' && fieldOf(model, 'fault') !== '#UD';
    },
  }),
  pvm({
    id: 'pvm-cpl0-int3-internal-error',
    title: 'INT3 (and INT n) at CPL0 ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR (emulation failure): the emulator does not do protected-mode software interrupts',
    doc: 'docs/real-kvm.md#int-n-from-cpl3-is-ud',
  }),
  pvm({
    id: 'pvm-cpl0-hypercalls-never-complete',
    title: 'A VMCALL or VMMCALL at CPL0 never retires (the emulator rewrites it and runs it again, for ever): the VMM answers host_unsupported, and scenarios with CPL0 hypercalls are unsupported',
    doc: 'docs/real-kvm.md#cpl0-hypercalls-never-complete',
  }),
  pvm({
    id: 'pvm-out-retired-at-exit',
    title: 'At a KVM_EXIT_IO for an OUT, RIP is already past it (the emulator writes RIP back before exiting; VMX\'s handle_io() leaves it on the OUT until complete_fast_pio_out())',
    doc: 'docs/real-kvm.md#an-out-has-retired-when-it-exits',
  }),
  {
    id: 'immediate-exit-intr',
    kind: 'model-decision',
    title: 'KVM_RUN with immediate_exit leaves exit_reason stale (0, or the last exit\'s); run() reports KVM_EXIT_INTR on both backends',
    doc: 'docs/real-kvm.md#run-reports-kvm_exit_intr-whenever-kvm_run-returned-eintr',
  },
  {
    id: 'no-in-kernel-lapic',
    kind: 'model-decision',
    title: 'x2APIC registers are handled in KVM by the model\'s local APIC; on real KVM the VMM creates no irqchip, so they are not',
    doc: 'docs/real-kvm.md#the-model-has-an-in-kernel-local-apic',
    matches: (step, model, kvm) => {
      const a = guest(step)?.action;
      return (a?.op === 'rdmsr' || a?.op === 'wrmsr') && X2APIC(a.index) && faults(model, kvm, null, '#GP(0)');
    },
  },
];

/** The explanation of a divergent step on `host`, if the project has one. */
export function knownDivergence(step: Step, model: Shown, kvm: Shown, host: BackendHost | undefined): KnownDivergence | undefined {
  const entry = ENTRIES.find((e) => (e.vendorModule === undefined || (host?.vendorModules ?? []).includes(e.vendorModule)) && e.matches?.(step, model, kvm) === true);
  if (entry === undefined) return undefined;
  const { id, kind, title, doc } = entry;
  return { id, kind, title, doc };
}

/** The host quirks documented for `host` (by its vendor module): what tests on that host expect instead. */
export function hostQuirks(host: BackendHost): string[] {
  return ENTRIES.filter((e) => e.kind === 'host-quirk' && e.vendorModule !== undefined && (host.vendorModules ?? []).includes(e.vendorModule)).map((e) => e.id);
}

/** Every entry, for the documentation test (each `doc` must exist). */
export function knownDivergences(): readonly KnownDivergence[] {
  return ENTRIES;
}
