/**
 * The demo's live monitor (docs/register-intercepts.md): a VM of the register-intercepts
 * mechanism of examples/policies/cr-hardening.json, with a monitor attached in this process
 * through `Vmm.attachMonitor` — the higher VTL of Hyper-V's VSM, which Heki has no counterpart
 * of — deciding each intercept as it comes and saying so. It holds CR0.WP, CR4.SMEP and the
 * kernel's IDT (Heki pins CR bits only: it cannot reach a descriptor table) and lets the rest by.
 */
import crHardening from '../../examples/policies/cr-hardening.json' with { type: 'json' };
import type { Story } from '../../examples/shared/story.js';
import { X86_CR0_TS, X86_CR0_WP, X86_CR4_SMEP } from '../../protocol/abi.js';
import { describeFault, hex } from '../../protocol/notation.js';
import { mechanismsOf } from '../conform/audit/mechanisms.js';
import type { Machine } from '../vmm/machine.js';
import { parsePolicy } from '../vmm/policy/index.js';
import type { InterceptContext, InterceptMonitor } from '../vmm/run/cr-exit-answers.js';
import type { PinboxExitAnswer } from '../vmm/run/user-space-exit.js';
import { Vmm } from '../vmm/vmm.js';

/** Where the guest keeps the pseudo-descriptor its LIDT loads. */
const DESCRIPTOR_AT = 0x9_e000;
const LIDT_RAX_HLT = Uint8Array.from([0x0f, 0x01, 0x18, 0xf4]); // lidt [rax]; hlt

interface Table { readonly base: bigint; readonly limit: number }

/** A set bit the write would clear. */
function clears(old: bigint, now: bigint, bit: bigint): boolean {
  return (old & bit) !== 0n && (now & bit) === 0n;
}

/**
 * The monitor's rule: deny a CR0 write clearing WP, a CR4 write clearing SMEP and an LIDT of any
 * table but the kernel's (`idt`, read when the monitor attached); allow everything else.
 */
export function demoMonitorVerdict(i: InterceptContext['intercept'], idt: Table): { answer: PinboxExitAnswer; why: string } {
  const deny = (why: string) => ({ answer: { action: 'deny' as const }, why });
  const allow = (why: string) => ({ answer: { action: 'allow' as const }, why });
  switch (i.name) {
    case 'Cr0Write': return clears(i.old, i.new, X86_CR0_WP) ? deny('it would clear CR0.WP') : allow('CR0.WP stays set');
    case 'Cr4Write': return clears(i.old, i.new, X86_CR4_SMEP) ? deny('it would clear CR4.SMEP') : allow('CR4.SMEP stays set');
    case 'IdtrWrite':
      return i.new === idt.base && i.newLimit === idt.limit ? allow('the kernel\'s own IDT') : deny('not the kernel\'s IDT');
    default: return allow('not a register this monitor holds');
  }
}

/** `CR0 0x80050033 → 0x80040033`, `IDTR 0x…/0xfff → 0x…/0xfff` (base/limit). */
function change(i: InterceptContext['intercept']): string {
  switch (i.name) {
    case 'Cr0Write': return `CR0 ${hex(i.old)} → ${hex(i.new)}`;
    case 'Cr4Write': return `CR4 ${hex(i.old)} → ${hex(i.new)}`;
    case 'IdtrWrite': return `IDTR ${hex(i.old)}/${hex(i.oldLimit)} → ${hex(i.new)}/${hex(i.newLimit)}`;
    default: return `${i.name} ${hex(i.old)} → ${hex(i.new)}`;
  }
}

/** What the guest does: the kernel's own writes, then the attacker's. */
function actions(vm: Machine): { what: string; request: () => unknown }[] {
  const s = vm.getSregs(0);
  const lidt = (t: Table) => () => {
    vm.memory.write16(DESCRIPTOR_AT, t.limit);
    vm.memory.write64(DESCRIPTOR_AT + 2, t.base);
    return { op: 'exec', code: LIDT_RAX_HLT, regs: { rax: BigInt(DESCRIPTOR_AT) } };
  };
  const cr0 = () => vm.getSregs(0).cr0;
  const cr4 = () => vm.getSregs(0).cr4;
  return [
    { what: 'the kernel sets CR0.TS (lazy FPU switching): mov cr0', request: () => ({ op: 'writeCr', cr: 0, value: cr0() | X86_CR0_TS }) },
    { what: 'the kernel clears it again: clts', request: () => ({ op: 'clts' }) },
    { what: 'the kernel reloads its IDT: lidt', request: lidt(s.idt) },
    { what: 'the attacker clears CR0.WP: mov cr0', request: () => ({ op: 'writeCr', cr: 0, value: cr0() & ~X86_CR0_WP }) },
    { what: 'the attacker clears CR4.SMEP: mov cr4', request: () => ({ op: 'writeCr', cr: 4, value: cr4() & ~X86_CR4_SMEP }) },
    { what: 'the attacker loads an IDT of its own (one page up): lidt', request: lidt({ base: s.idt.base + 0x1000n, limit: s.idt.limit }) },
  ];
}

/** Runs the live monitor's part of the demo; true when the monitor held WP, SMEP and the IDT. */
export async function liveMonitor(story: Story): Promise<boolean> {
  const mechanism = mechanismsOf(parsePolicy(crHardening, 'cr-hardening.json')).find((m) => m.name === 'register-intercepts')!;
  const vmm = new Vmm({ policy: mechanism.policy });
  try {
    const vm = vmm.createVm('monitored', mechanism.policy);
    const idt = vm.getSregs(0).idt;
    story.text('');
    story.text('A monitor at work. With register intercepts, a monitor in a higher trust level (VTL1, as in Hyper-V\'s VSM) decides each ' +
      'intercepted register write of the guest. Here one is attached in this process (Vmm.attachMonitor) to a VM of the same policy: ' +
      'it denies a CR0 write clearing WP, a CR4 write clearing SMEP and an LIDT of any table but the kernel\'s — the IDT that Heki cannot ' +
      'reach — and allows the rest. Each line "VTL1" is one decision, taken while the vCPU waits:');
    const monitor: InterceptMonitor = ({ intercept }) => {
      const { answer, why } = demoMonitorVerdict(intercept, idt);
      story.vtl1(`${intercept.name}: ${change(intercept)}: ${answer.action} (${why})`);
      return answer;
    };
    const detach = vmm.attachMonitor(vm.name, monitor);
    try {
      for (const a of actions(vm)) {
        story.guest(a.what);
        const r = (await vm.perform(0, a.request())) as { fault?: { vector: number; errorCode?: number } };
        story.guest(r.fault === undefined ? '→ done' : `→ ${describeFault(r.fault)}: refused, nothing changed`);
      }
    } finally {
      detach();
    }
    const s = vm.getSregs(0);
    const held = (s.cr0 & X86_CR0_WP) !== 0n && (s.cr4 & X86_CR4_SMEP) !== 0n && s.idt.base === idt.base && s.idt.limit === idt.limit;
    story.text(held ? 'The monitor held CR0.WP, CR4.SMEP and the kernel\'s IDT, and let the kernel\'s own writes through.'
      : 'The monitor did NOT hold what it guards: CR0, CR4 or the IDT changed.');
    return held;
  } finally {
    vmm.close();
  }
}
