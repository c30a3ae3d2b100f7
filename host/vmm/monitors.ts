/**
 * The monitors of a VMM's VMs: for each VM at most one, standing for the higher VTL of Hyper-V's
 * VSM (docs/register-intercepts.md), which decides the VM's register intercepts. A monitor is a
 * function in this process or a client in the monitor role (server/monitor-endpoint.ts); it is
 * attached by VM name, before or after the VM is made, and stays across a VM reset.
 */
import { ProtocolError } from '../../protocol/errors.js';
import type { InterceptMonitor } from './run/cr-exit-answers.js';

export class MonitorRegistry {
  private readonly byVm = new Map<string, InterceptMonitor>();

  /** The VM's monitor; `already_exists` if it has one. Returns the detach function. */
  attach(vm: string, monitor: InterceptMonitor): () => void {
    this.checkFree(vm);
    this.byVm.set(vm, monitor);
    return () => {
      if (this.byVm.get(vm) === monitor) this.byVm.delete(vm);
    };
  }

  /** `already_exists` if the VM has a monitor: a VM has one higher VTL. */
  checkFree(vm: string): void {
    if (this.byVm.has(vm)) throw new ProtocolError('already_exists', `VM "${vm}" has a monitor already: a VM has one higher VTL`, { path: 'vm' });
  }

  get(vm: string): InterceptMonitor | undefined {
    return this.byVm.get(vm);
  }
}
