/**
 * The real backend as host/kvm/api/backend.ts hands it out: loadBackend('kvm') imports this
 * module — and, through libc.ts, koffi — only when asked for.
 */
import type { BackendHost, KvmBackend, RealBackendOptions } from '../api/backend.js';
import { describeHost } from './host.js';
import { Kvm } from './kvm.js';
import { loadLibc } from './libc.js';

/** Loads koffi (RealKvmUnavailable when the machine cannot have it); each open() opens /dev/kvm. */
export async function realBackend(options: RealBackendOptions = {}): Promise<KvmBackend> {
  const libc = await loadLibc();
  let host: BackendHost | undefined;
  return {
    name: 'kvm',
    open: (o = {}) => Kvm.open(libc, { ...options, ...(o.profile !== undefined && { profile: o.profile }) }),
    describe: () => (host ??= describeHost(Kvm.open(libc, { ...(options.path !== undefined && { path: options.path }) }))),
  };
}
