/**
 * KVM's tracepoints (host/kvm/api/tracepoints.ts) into the VMM's event log, for one VM (each VM
 * has its own Kvm, so a tracepoint names its VM by where it fires). Only the model has them
 * (ModelKvm): on another backend the VMM has no bridge. A tracepoint is listened to
 * only while the log wants its event — KVM builds no event object for a tracepoint nobody
 * listens to — and the listeners follow the log's subscriptions (EventLog.interestEpoch).
 *
 * The HLT with which a guest operation ends in the VMM's own code is marked a completion
 * (EventFilter.completions): subscribers get it only when they ask.
 *
 * The bridge also catches Heki denials that never reach user space: without a denial exit for
 * that register, KVM injects #GP itself and only prints "heki: Blocked CRn update"; the VMM
 * records that line as a heki_denial with path "in-kernel" (catalogue.ts), so that every denial
 * is in the log whichever path it took. Likewise an access a memory protection refused that KVM
 * answered with a #PF of its own (delivery "inject", docs/memory-protection.md) reaches the VMM only
 * through kvm_memory_denial: the bridge hands it on (BridgeHost.injectedMemoryDenial), which records
 * it as memory_denial with path "inject" and acts on it — listened to whenever the log wants the
 * event or the policy acts on denials, so that no action depends on who subscribes.
 */
import type { TracepointEvents, TracepointName, TracepointSource } from '../../kvm/api/tracepoints.js';
import type { EventLog, EventName } from '../events/index.js';
import type { MemoryDenial } from './memory-denials.js';

/** Tracepoints with an event of the same name in the catalogue. */
const MIRRORED = ['kvm_exit', 'kvm_userspace_exit', 'kvm_msr', 'kvm_cr', 'kvm_hypercall', 'kvm_pio', 'kvm_inj_exception'] as const;
type Mirrored = (typeof MIRRORED)[number];

export interface BridgeHost {
  /** kvm_run.reason of a vCPU now (kvm_userspace_exit carries only the number). */
  exitName(vcpu: number): string;
  /** Whether a denied write to CR`cr` reaches user space as an exit (then it is recorded there). */
  denialExits(cr: number): boolean;
  /** Whether the VMM acts on memory denials (onViolation other than "log"): then they are listened to always. */
  actsOnMemoryDenials(): boolean;
  /** A denial KVM delivered as #PF itself (kvm_memory_denial, delivery "inject"); `rip` is the faulting instruction. */
  injectedMemoryDenial(vcpu: number, denial: MemoryDenial, rip: bigint): void;
  /** Whether a HLT at `rip` ends the vCPU's operation in the VMM's own code (EventFilter.completions). */
  isCompletion(vcpu: number, rip: bigint): boolean;
}

export class TracepointBridge {
  private seenEpoch = -1;
  private stale = true;
  private watchDenials = false;
  private readonly listening = new Map<TracepointName, () => void>();
  /** The guest RIP of each vCPU's current intercept, from kvm_exit. */
  private readonly rips: bigint[] = [];
  /** Whether each vCPU's current intercept is the HLT of its operation's completion. */
  private readonly completions: boolean[] = [];

  constructor(
    private readonly tracepoints: TracepointSource,
    private readonly log: EventLog,
    private readonly vm: string,
    private readonly host: BridgeHost,
  ) {}

  /** Listen for in-kernel Heki denials (while some register's denials do not exit). */
  watchInKernelDenials(on: boolean): void {
    if (on !== this.watchDenials) {
      this.watchDenials = on;
      this.stale = true;
    }
  }

  /** Brings the listeners in step with the log; cheap when nothing changed. */
  sync(): void {
    if (!this.stale && this.log.interestEpoch === this.seenEpoch) return;
    this.stale = false;
    this.seenEpoch = this.log.interestEpoch;
    const wanted = new Set<TracepointName>();
    for (const name of MIRRORED) if (this.log.wants(name, this.vm)) wanted.add(name);
    if (this.watchDenials && this.log.wants('heki_denial', this.vm)) wanted.add('kvm_heki_blocked');
    // Every event carries the guest RIP, which only kvm_exit knows (kvm_memory_denial has its own).
    if (wanted.size > 0) wanted.add('kvm_exit');
    if (this.host.actsOnMemoryDenials() || this.log.wants('memory_denial', this.vm)) wanted.add('kvm_memory_denial');
    for (const [name, off] of this.listening) {
      if (!wanted.has(name)) {
        off();
        this.listening.delete(name);
      }
    }
    for (const name of wanted) {
      if (!this.listening.has(name)) this.listening.set(name, this.listen(name));
    }
  }

  /** Stops every listener (the VM is going away). */
  close(): void {
    for (const off of this.listening.values()) off();
    this.listening.clear();
  }

  private listen(name: TracepointName): () => void {
    const tp = this.tracepoints;
    switch (name) {
      case 'kvm_exit':
        return tp.on('kvm_exit', (e) => {
          this.rips[e.vcpu_id] = e.guest_rip;
          const completion = e.exit_reason === 'HLT' && this.host.isCompletion(e.vcpu_id, e.guest_rip);
          this.completions[e.vcpu_id] = completion;
          this.mirror('kvm_exit', e.vcpu_id, { exit_reason: e.exit_reason }, completion);
        });
      case 'kvm_userspace_exit':
        return tp.on('kvm_userspace_exit', (e) => {
          const reason = this.host.exitName(e.vcpu_id);
          const completion = reason === 'KVM_EXIT_HLT' && this.completions[e.vcpu_id] === true;
          this.mirror('kvm_userspace_exit', e.vcpu_id, { reason, exit_reason: e.reason >>> 0, errno: e.errno }, completion);
        });
      case 'kvm_msr':
        return tp.on('kvm_msr', (e) => this.mirror('kvm_msr', e.vcpu_id, { write: e.write, ecx: e.ecx, data: e.data, exception: e.exception }));
      case 'kvm_cr':
        return tp.on('kvm_cr', (e) => this.mirror('kvm_cr', e.vcpu_id, { rw: e.rw === 'write' ? 1 : 0, cr: e.cr, val: e.val }));
      case 'kvm_hypercall':
        return tp.on('kvm_hypercall', (e) => this.mirror('kvm_hypercall', e.vcpu_id, { nr: e.nr, a0: e.a0, a1: e.a1, a2: e.a2, a3: e.a3 }));
      case 'kvm_pio':
        return tp.on('kvm_pio', (e) =>
          this.mirror('kvm_pio', e.vcpu_id, { rw: e.rw === 'out' ? 1 : 0, port: e.port, size: e.size, count: e.count, val: e.val >>> 0 }));
      case 'kvm_inj_exception':
        return tp.on('kvm_inj_exception', (e) =>
          this.mirror('kvm_inj_exception', e.vcpu_id, { exception: e.exception, has_error: e.has_error, error_code: e.error_code >>> 0 }));
      case 'kvm_heki_blocked':
        return tp.on('kvm_heki_blocked', (e) => this.inKernelDenial(e));
      case 'kvm_memory_denial':
        return tp.on('kvm_memory_denial', (e) => {
          // A denial delivered as KVM_EXIT_MEMORY_FAULT is recorded when the VMM answers the exit.
          if (e.delivery !== 'inject') return;
          const page = e.gpa - (e.gpa % 4096n);
          this.host.injectedMemoryDenial(e.vcpu_id, { gpa: page, ...(e.gva !== undefined && { gva: e.gva }), access: e.access, qualification: e.qualification }, e.rip);
        });
      default:
        return () => {};
    }
  }

  private mirror<N extends Mirrored>(name: N, vcpu: number, fields: Parameters<EventLog['emit']>[2] & object, completion = false): void {
    if (this.log.wants(name, this.vm)) this.log.emit(name as EventName, this.vm, fields as never, vcpu, this.rips[vcpu], completion);
  }

  private inKernelDenial(e: TracepointEvents['kvm_heki_blocked']): void {
    if (this.host.denialExits(e.cr)) return; // recorded when the VMM handles the exit
    if (!this.log.wants('heki_denial', this.vm)) return;
    this.log.emit('heki_denial', this.vm, { reason: e.cr === 0 ? 1 : 2, cr: e.cr, cr_value: e.val, path: 'in-kernel', action: 'log' }, e.vcpu_id, this.rips[e.vcpu_id]);
  }
}
