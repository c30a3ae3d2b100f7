/**
 * What the VMM knows of the KVM it runs on beyond the API: facts a survey of the host found by
 * behaviour (host-survey.ts), which the run loop needs to answer honestly where the host lacks
 * something. The model has everything (MODEL_FACTS).
 */
import type { BackendHost } from '../kvm/api/backend.js';

export interface HostFacts {
  /** What the backend's KVM is (KvmBackend.describe()). */
  readonly host: BackendHost;
  /**
   * Whether a hypercall at CPL0 runs to completion, and how that was found. False on a PVM
   * host, where KVM's emulator runs all CPL0 code and never completes a VMCALL (docs/real-kvm.md).
   */
  readonly hypercalls: { readonly complete: boolean; readonly detail: string };
}

/** A host whose facts nobody surveyed: the API is all there is to go on. */
export function unsurveyedFacts(host: BackendHost): HostFacts {
  return { host, hypercalls: { complete: true, detail: 'not surveyed' } };
}
