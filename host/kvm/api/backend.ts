/**
 * Where a VMM gets its KVM: a backend opens the system fd, and everything else comes from it.
 * Two backends implement the same interfaces (system.ts, vm.ts, vcpu.ts):
 *   - 'model': the KVM model over host/x86's core, pure TypeScript, the default;
 *   - 'kvm': the machine's /dev/kvm through an FFI (host/kvm/real). It is never imported
 *     statically: loadBackend('kvm') loads it — and the optional package koffi — when asked for,
 *     so a VMM on the model needs nothing native.
 */
import type { HekiProfileName } from '../../../protocol/abi.js';
import { Kvm } from '../kvm.js';
import type { CpuFactory } from '../vm.js';
import type { KvmSystem } from './system.js';

export type BackendName = 'model' | 'kvm';
export const BACKEND_NAMES: readonly BackendName[] = ['model', 'kvm'];

export interface OpenOptions {
  /** The Heki profile whose capability numbers the system fd's KVM_CHECK_EXTENSION answers (default v2). */
  readonly profile?: HekiProfileName;
}

export interface KvmBackend {
  readonly name: BackendName;
  /** Opens the system fd (/dev/kvm). */
  open(options?: OpenOptions): KvmSystem;
  /** What this KVM is, for results that must name the host they ran on. */
  describe(): BackendHost;
}

/** A backend's KVM as reports name it: the model, or the machine's kernel and vendor module. */
export interface BackendHost {
  readonly backend: BackendName;
  /** One line: "pinbox's KVM model" or "Linux 6.18.44, kvm_pvm, KVM API 12". */
  readonly summary: string;
  /** Real KVM: the kernel release (uname -r). */
  readonly kernel?: string;
  /** Real KVM: the vendor modules (kvm_intel, kvm_amd, kvm_pvm, …). */
  readonly vendorModules?: readonly string[];
  readonly apiVersion?: number;
  /** Real KVM: the kvm.ignore_msrs module parameter, when the kernel shows it. */
  readonly ignoreMsrs?: boolean;
  /** Real KVM: the CR4 features the host kernel has turned on, as /proc/cpuinfo's flags name them (smep, smap, umip, fsgsbase, …). */
  readonly cr4Flags?: readonly string[];
  /** Real KVM: KVM_CHECK_EXTENSION as the kernel answers it at Heki's capability numbers (mainline capabilities there). */
  readonly hekiNumbers?: readonly { readonly cap: number; readonly value: number }[];
}

export interface ModelBackendOptions {
  /** Makes each vCPU's core over the VM's memory (default: host/x86's Cpu): for tests of another core. */
  readonly createCpu?: CpuFactory;
}

export interface RealBackendOptions {
  /** The KVM device (default /dev/kvm). */
  readonly path?: string;
  /**
   * The kernel implements Heki: true under either profile's numbers, a profile's name under that
   * one's (default false: mainline KVM has no Heki). host/vmm's openBackend() tells by behaviour.
   */
  readonly hostHeki?: boolean | HekiProfileName;
}

const MODEL_HOST: BackendHost = Object.freeze({ backend: 'model', summary: 'pinbox\'s KVM model (host/kvm, with Heki v2 and v3) on its x86-64 core' });

/** The KVM model. */
export function modelBackend(options: ModelBackendOptions = {}): KvmBackend {
  const createCpu = options.createCpu;
  return {
    name: 'model',
    open: (o = {}) => new Kvm({ ...(o.profile !== undefined && { profile: o.profile }), ...(createCpu !== undefined && { createCpu }) }),
    describe: () => MODEL_HOST,
  };
}

/**
 * A backend by name. 'kvm' loads host/kvm/real and koffi, and rejects with RealKvmUnavailable
 * (no koffi, not Linux on x86-64, another KVM API version) when the machine cannot have it.
 */
export async function loadBackend(name: BackendName, options: RealBackendOptions = {}): Promise<KvmBackend> {
  if (name === 'model') return modelBackend();
  if (name !== 'kvm') throw new RangeError(`unknown KVM backend ${String(name)} (known: ${BACKEND_NAMES.join(', ')})`);
  const { realBackend } = await import('../real/backend.js');
  return realBackend(options);
}
