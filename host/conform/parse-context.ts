/** What the step parsers share while one scenario is checked. */
import type { NameContext } from './resolve-names.js';

export interface ParseContext extends NameContext {
  /** vm.vcpus: vCPU fields must be below it. */
  readonly vcpus: number;
  /** Snapshot names taken by the steps parsed so far, for restore. */
  readonly snapshots: Set<string>;
}

/** A vCPU field (default 0) checked against the VM's vCPU count. */
export function vcpuOf(value: number | undefined, path: string, cx: ParseContext): number {
  const vcpu = value ?? 0;
  if (vcpu >= cx.vcpus) {
    cx.issues.add(path, `vCPU ${vcpu} does not exist: the VM has ${cx.vcpus} vCPU${cx.vcpus === 1 ? '' : 's'} (vm.vcpus)`);
  }
  return vcpu;
}
