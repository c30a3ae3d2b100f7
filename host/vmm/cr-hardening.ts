/**
 * The CR filter and the secure register intercepts of one VM, as user space keeps them
 * (docs/cr-filter.md, docs/register-intercepts.md): what it installed through the KVM
 * extensions — KVM has no getter for the filter, so the VMM remembers it for snapshots — and
 * the events that say so. Both are pinbox extensions of the KVM model: on a backend without
 * them (KVM_CHECK_EXTENSION 0, no method) a policy that needs one is refused with ENOTTY, as an
 * ioctl the kernel lacks, rather than run unprotected.
 */
import { KvmError } from '../kvm/api/errors.js';
import type { RegInterceptSpec } from '../kvm/api/cr-hardening.js';
import type { KvmVcpu } from '../kvm/api/vcpu.js';
import type { KvmVm } from '../kvm/api/vm.js';
import type { EventLog } from './events/index.js';
import type { CompiledPolicy, CrFilterMasks } from './policy/index.js';

/** What the VM's CR hardening acts on. */
export interface CrHardeningHost {
  readonly name: string;
  readonly log: EventLog;
  readonly vm: KvmVm;
}

const NO_INTERCEPTS: RegInterceptSpec = { control: 0n, cr0Mask: (1n << 64n) - 1n, cr4Mask: (1n << 64n) - 1n, miscEnableMask: (1n << 64n) - 1n };

export class CrHardening {
  /** The CR filter in force, as it was given; undefined: none. */
  private masks: CrFilterMasks | undefined;

  constructor(
    private readonly host: CrHardeningHost,
    private readonly policy: CompiledPolicy,
  ) {}

  /** The CR filter in force (for snapshots). */
  get filter(): CrFilterMasks | undefined {
    return this.masks;
  }

  /** The policy's CR filter in place of whatever a control client installed (VM creation and reset). */
  applyPolicyFilter(): void {
    const wanted = this.policy.crFilter;
    if (this.masks === wanted) return;
    if (wanted === undefined) {
      // Only a control client's filter can be in force here, on a VM whose KVM has the extension.
      this.host.vm.setCrFilter!({ flags: 0, cr0Mask: 0n, cr4Mask: 0n });
      this.masks = undefined;
      return;
    }
    this.install(wanted);
  }

  /** A control client's filter (a snapshot's too); flags and an XCR0 mask go to KVM as given, for it to judge. */
  setFilter(masks: CrFilterMasks & { flags?: number; xcr0Mask?: bigint }, origin: 'policy' | 'control'): void {
    this.install(masks);
    this.filterChanged(origin);
  }

  filterChanged(origin: 'policy' | 'control'): void {
    const { log, name } = this.host;
    const m = this.masks ?? { cr0Mask: 0n, cr4Mask: 0n };
    if (log.wants('cr_filter_changed', name)) log.emit('cr_filter_changed', name, { cr0_mask: m.cr0Mask, cr4_mask: m.cr4Mask, origin });
  }

  private install(masks: CrFilterMasks & { flags?: number; xcr0Mask?: bigint }): void {
    const set = this.host.vm.setCrFilter?.bind(this.host.vm);
    if (set === undefined) {
      throw new KvmError('ENOTTY', 'PINBOX_SET_CR_FILTER', 'this KVM has no CR filter (KVM_CAP_PINBOX_CR_FILTER is 0): it is a pinbox extension of the KVM model');
    }
    set({ flags: masks.flags ?? 0, cr0Mask: masks.cr0Mask, cr4Mask: masks.cr4Mask, ...(masks.xcr0Mask !== undefined && { xcr0Mask: masks.xcr0Mask }) });
    this.masks = masks.cr0Mask === 0n && masks.cr4Mask === 0n ? undefined : { cr0Mask: masks.cr0Mask, cr4Mask: masks.cr4Mask };
  }

  /**
   * A vCPU booted at VM creation or reset: the policy's intercepts, or none — a monitor's own
   * are dropped with the VM they were set on, and the monitor is told (vm_reset) to arm again.
   */
  policyIntercepts(vcpu: KvmVcpu): void {
    const wanted = this.policy.registerIntercepts;
    if (wanted !== undefined) this.setIntercepts(vcpu, wanted, 'policy');
    else if (vcpu.getRegisterIntercepts?.().control) vcpu.setRegisterIntercepts!(NO_INTERCEPTS);
  }

  setIntercepts(vcpu: KvmVcpu, spec: RegInterceptSpec, origin: 'policy' | 'monitor' | 'restore'): void {
    const set = vcpu.setRegisterIntercepts?.bind(vcpu);
    if (set === undefined) {
      throw new KvmError('ENOTTY', 'PINBOX_SET_REG_INTERCEPTS', 'this KVM has no register intercepts (KVM_CAP_PINBOX_REG_INTERCEPTS is 0): they are a pinbox extension of the KVM model');
    }
    set(spec);
    const { log, name } = this.host;
    if (log.wants('register_intercepts_changed', name)) {
      log.emit('register_intercepts_changed', name, { control: spec.control, cr0_mask: spec.cr0Mask, cr4_mask: spec.cr4Mask, origin }, vcpu.id);
    }
  }

  getIntercepts(vcpu: KvmVcpu): RegInterceptSpec {
    const get = vcpu.getRegisterIntercepts?.bind(vcpu);
    if (get === undefined) throw new KvmError('ENOTTY', 'PINBOX_GET_REG_INTERCEPTS', 'this KVM has no register intercepts');
    return get();
  }
}
