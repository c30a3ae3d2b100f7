/**
 * A trace as `trace-cmd report` prints a real KVM host's: one line per event,
 *
 *   harden/vcpu0 [000]     0.001234: kvm_exit: vcpu 0 reason MSR_READ rip 0x100004
 *   harden/vcpu0 [000]     0.001240: kvm_msr: msr_read c0000080 = 0xd01
 *   harden/vcpu1 [001]     0.002000: kvm_userspace_exit: reason HEKI_DENIAL (40)
 *   harden [---]     0.002001: heki_denial: reason=2(CR4) cr=4 cr_value=0x210ea0 path=exit action=log
 *
 * with the thread (the VM and vCPU; the VM alone, or `pinbox`, for events of no vCPU), the
 * "CPU" (the vCPU), the time in seconds and the event. The tracepoint mirrors are printed as the
 * kernel's TP_printk() formats print them (arch/x86/kvm/trace.h, include/trace/events/kvm.h),
 * with what pinbox records (kvm_exit has no info1/info2 unless the event carries them); pinbox's
 * own events in docs/events.md's key=value form.
 */
import { fieldsText, VMM_EVENTS, type Event } from '../../protocol/events/index.js';
import { seconds } from './output.js';

const x = (v: unknown): string => (typeof v === 'bigint' || typeof v === 'number' ? v.toString(16) : String(v));

/** kvm_trace_sym_exc: the vectors the kernel's trace names (others print as numbers). */
const TRACE_EXCEPTIONS: Readonly<Record<number, string>> = {
  0: '#DE', 1: '#DB', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF', 10: '#TS', 11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF',
  16: '#MF', 17: '#AC', 18: '#MC',
};

/** TP_printk() of each mirrored tracepoint, over the event's fields. */
const PRINTK: Readonly<Record<string, (f: Event['fields'], e: Event) => string>> = {
  kvm_exit: (f, e) =>
    `vcpu ${e.vcpu ?? 0} reason ${String(f.exit_reason)} rip 0x${x(e.rip ?? 0n)}` +
    (f.info1 === undefined ? '' : ` info1 0x${x(f.info1).padStart(16, '0')}`) +
    (f.info2 === undefined ? '' : ` info2 0x${x(f.info2).padStart(16, '0')}`),
  kvm_userspace_exit: (f) => {
    const errno = Number(f.errno);
    if (errno < 0) return `reason ${errno === -4 ? 'restart' : 'error'} (${-errno})`;
    return `reason ${String(f.reason).replace(/^KVM_EXIT_/, '')} (${Number(f.exit_reason)})`;
  },
  kvm_msr: (f) => `msr_${f.write ? 'write' : 'read'} ${x(f.ecx)} = 0x${x(f.data)}${f.exception ? ' (#GP)' : ''}`,
  kvm_cr: (f) => `cr_${f.rw === 1 ? 'write' : 'read'} ${x(f.cr)} = 0x${x(f.val)}`,
  kvm_hypercall: (f) => `nr 0x${x(f.nr)} a0 0x${x(f.a0)} a1 0x${x(f.a1)} a2 0x${x(f.a2)} a3 0x${x(f.a3)}${f.ret === undefined ? '' : ` ret 0x${x(f.ret)}`}`,
  kvm_pio: (f) => `pio_${f.rw === 1 ? 'write' : 'read'} at 0x${x(f.port)} size ${Number(f.size)} count ${Number(f.count)} val 0x${x(f.val)}${Number(f.count) > 1 ? ' (...)' : ''}`,
  kvm_inj_exception: (f) => {
    const vector = Number(f.exception);
    return `${TRACE_EXCEPTIONS[vector] ?? `0x${x(vector)}`}${f.has_error ? ` (0x${x(f.error_code)})` : ''}`;
  },
};

/** The thread column: `harden/vcpu0`, `harden` or `pinbox`. */
function thread(e: Event): string {
  if (e.vm === VMM_EVENTS) return 'pinbox';
  return e.vcpu === undefined ? e.vm : `${e.vm}/vcpu${e.vcpu}`;
}

export function traceCmdLine(e: Event): string {
  const cpu = e.vcpu === undefined ? '---' : String(e.vcpu).padStart(3, '0');
  const print = PRINTK[e.name]?.(e.fields, e) ?? fieldsText(e);
  return `${thread(e).padStart(16)} [${cpu}] ${seconds(e.time).padStart(12)}: ${e.name}: ${print}\n`;
}
