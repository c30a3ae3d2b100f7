/**
 * gdb's `monitor` commands (qRcmd) for what a kernel-hardening developer asks of the VMM while
 * the guest is stopped: the Heki pins, the MSR filter in force, the recent events (the exits the
 * VMM answered, denials, pins). The output goes to gdb's console.
 */
import { hex } from '../../../protocol/notation.js';
import type { Machine } from '../machine.js';

export interface MonitorContext {
  readonly machine: Machine;
  readonly vcpu: number;
  /** The VM's recent events as text lines, oldest first. */
  readonly recentEvents: () => string[];
}

const HELP = [
  'pinbox monitor commands:',
  '  pins          the CR0 and CR4 bits Heki has pinned on this VM',
  '  msr-filter    the MSR filter in force (KVM_X86_SET_MSR_FILTER)',
  '  exits [N]     the last N (default 20) events of this VM: exits, answers, denials',
  '  help          this list',
].join('\n') + '\n';

export function monitorCommand(line: string, ctx: MonitorContext): string {
  const [cmd, ...args] = line.trim().split(/\s+/);
  const m = ctx.machine;
  switch (cmd) {
    case 'pins': {
      const p = m.hekiPins;
      return `Heki pins of VM "${m.name}" (profile ${m.profile}): CR0 ${hex(p.cr0)}, CR4 ${hex(p.cr4)}\n`;
    }
    case 'msr-filter': {
      const f = m.msrFilter;
      if (f === undefined) return 'no MSR filter is installed: every MSR follows KVM\'s own handling\n';
      const all = (f.ranges ?? []).filter((r) => r.nmsrs > 0);
      const ranges = all.map((r, i) => {
        const flags = [(r.flags & 1) !== 0 ? 'reads' : '', (r.flags & 2) !== 0 ? 'writes' : ''].filter((x) => x !== '').join(' and ');
        // KVM: a set bit allows the access, a clear one denies it (api.rst, KVM_X86_SET_MSR_FILTER).
        const denied: string[] = [];
        for (let k = 0; k < r.nmsrs; k++) if (((r.bitmap?.[k >> 3] ?? 0) >> (k & 7) & 1) === 0) denied.push(hex(r.base + k));
        const shown = denied.length > 8 ? `${denied.slice(0, 8).join(' ')} … (${denied.length})` : denied.join(' ') || 'none';
        return `  range ${i}: ${hex(r.base)}..${hex(r.base + r.nmsrs - 1)} for ${flags || 'nothing'}; denied: ${shown}\n`;
      }).join('');
      return `MSR filter: default ${(f.flags & 1) !== 0 ? 'deny' : 'allow'}, ${all.length} range${all.length === 1 ? '' : 's'}\n${ranges}`;
    }
    case 'exits': {
      const n = args[0] === undefined ? 20 : Number(args[0]);
      if (!Number.isSafeInteger(n) || n < 1) return `exits: N must be a positive whole number, got ${args[0]}\n`;
      const lines = ctx.recentEvents().slice(-n);
      return lines.length === 0 ? 'no events yet\n' : lines.map((l) => `${l}\n`).join('');
    }
    case 'help':
    case undefined:
    case '':
      return HELP;
    default:
      return `unknown monitor command "${cmd}"\n${HELP}`;
  }
}
