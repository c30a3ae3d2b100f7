/**
 * What the VMM saw, in plain words, for the examples and `pinbox demo`: the Heki pins it was
 * told of, the denials it recorded and what it did about them, the MSR exits it answered.
 * Events that tell nothing to a reader of the story (per-instruction tracepoints, vCPU boots)
 * have no words: undefined.
 */
import type { Event } from '../../host/vmm/index.js';
import { CR0_BIT_NAMES, CR4_BIT_NAMES } from '../../host/vmm/index.js';
import { hex } from '../../protocol/notation.js';

/** "SMEP SMAP UMIP" for the CR4 bits set in `value` (the kernel's names, upper case). */
export function bitNames(cr: number, value: bigint): string {
  const names = cr === 0 ? CR0_BIT_NAMES : CR4_BIT_NAMES;
  const set = Object.entries(names).filter(([, bit]) => (value & bit) !== 0n).map(([n]) => n.toUpperCase());
  return set.length === 0 ? 'no bits' : set.join(' ');
}

const ANSWER_SOURCES: Readonly<Record<string, string>> = {
  value: 'a value from the policy',
  stored: 'the value stored for this vCPU (policy "store")',
  accept: 'accepted (policy)',
  deny: 'refused (policy)',
  'no-handler': 'refused: the policy has no handler for it',
  function: 'the VMM\'s handler function',
  request: 'the caller\'s own answer',
  untouched: 'left as KVM filled it',
  control: 'a control client\'s setMsrExitReply',
};

export function vmmWords(e: Event): string | undefined {
  const f = e.fields as Record<string, never>;
  const vcpu = e.vcpu === undefined ? '' : `vCPU ${e.vcpu} `;
  switch (e.name) {
    case 'heki_configure':
      return `KVM_EXIT_HEKI_CONFIGURE: CR${f.cr} bits ${hex(f.cr_pinned)} (${bitNames(f.cr, f.cr_pinned)}) are pinned now, for every vCPU of the VM`;
    case 'heki_denial':
      return f.path === 'exit'
        ? `KVM_EXIT_HEKI_DENIAL: ${vcpu}tried to load CR${f.cr} = ${hex(f.cr_value)}, which clears pinned bits; recorded, onDenial "${f.action}"${f.action === 'log' ? '; KVM then injects #GP(0)' : ''}`
        : `KVM refused ${vcpu}loading CR${f.cr} = ${hex(f.cr_value)} and injected #GP(0) itself (no denial exit for CR${f.cr}); recorded from KVM's log`;
    case 'msr_exit_reply': {
      const what = f.write ? `WRMSR ${hex(f.index)} = ${hex(f.data)}` : `RDMSR ${hex(f.index)}`;
      const answer = f.error !== 0 ? 'error 1: KVM injects #GP(0)' : f.write ? 'done' : `the guest reads ${hex(f.data)}`;
      return `KVM_EXIT_X86_${f.write ? 'WRMSR' : 'RDMSR'} (${f.reason}): ${vcpu}${what}; answered with ${ANSWER_SOURCES[f.source] ?? f.source}: ${answer}`;
    }
    case 'vm_paused':
      return `the VM is paused (${f.cause}) until a control client resumes it`;
    case 'vm_resumed':
      return 'the VM runs again';
    case 'vm_killed':
      return `the VM was killed (${f.cause})`;
    case 'vm_reset':
      return `the VM was reset (${f.cause})${f.pins_cleared ? ': the Heki pins are gone' : ''}`;
    default:
      return undefined;
  }
}
