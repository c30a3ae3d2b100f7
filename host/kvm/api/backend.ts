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
}

export interface ModelBackendOptions {
  /** Makes each vCPU's core over the VM's memory (default: host/x86's Cpu): for tests of another core. */
  readonly createCpu?: CpuFactory;
}

export interface RealBackendOptions {
  /** The KVM device (default /dev/kvm). */
  readonly path?: string;
  /** The kernel implements Heki under the profile's numbers (default false: mainline KVM has no Heki). */
  readonly hostHeki?: boolean;
}

/** The KVM model. */
export function modelBackend(options: ModelBackendOptions = {}): KvmBackend {
  const createCpu = options.createCpu;
  return {
    name: 'model',
    open: (o = {}) => new Kvm({ ...(o.profile !== undefined && { profile: o.profile }), ...(createCpu !== undefined && { createCpu }) }),
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
