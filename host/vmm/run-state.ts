/**
 * Whether a VM may run guest code: running, paused (onDenial "pause" or a control client,
 * until resumeVm) or killed (until a VM reset revives it). Operations ask before they start,
 * and an operation that had to stop part-way — paused in an exit handler — asks again before
 * it goes on: it continues only if the VM was resumed, not if it was reset or killed meanwhile.
 */
import { VmmError } from './errors.js';

export type VmState = 'running' | 'paused' | 'killed';

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  /** The epoch a suspended operation started in; undefined for one that has not started. */
  epoch: number | undefined;
}

export class RunState {
  private current: VmState = 'running';
  /** Bumped by every reset and kill: an operation from an older epoch is abandoned. */
  private epochNumber = 0;
  private waiters: Waiter[] = [];
  private killCause = '';

  constructor(private readonly vm: string) {}

  get state(): VmState {
    return this.current;
  }

  get epoch(): number {
    return this.epochNumber;
  }

  /** Undefined when an operation may start now; else a promise for when it may. Throws if killed. */
  beforeStart(): Promise<void> | undefined {
    if (this.current === 'running') return undefined;
    if (this.current === 'killed') throw this.killedError();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject, epoch: undefined }));
  }

  /** Resolves when an operation suspended in `epoch` may go on; rejects if the VM was reset or killed. */
  beforeContinuing(epoch: number): Promise<void> {
    if (this.epochNumber !== epoch) return Promise.reject(this.resetError());
    if (this.current === 'running') return Promise.resolve();
    if (this.current === 'killed') return Promise.reject(this.killedError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject, epoch }));
  }

  /** Throws if an operation that was suspended in `epoch` must not go on. */
  checkContinuing(epoch: number): void {
    if (this.current === 'killed') throw this.killedError();
    if (this.epochNumber !== epoch) throw this.resetError();
  }

  /** False if the VM was not running. */
  pause(): boolean {
    if (this.current !== 'running') return false;
    this.current = 'paused';
    return true;
  }

  /** False if the VM was not paused. */
  resume(): boolean {
    if (this.current !== 'paused') return false;
    this.current = 'running';
    this.release(() => undefined);
    return true;
  }

  /** Every operation waiting or suspended fails; later ones too, until reset(). */
  kill(cause: string): boolean {
    if (this.current === 'killed') return false;
    this.current = 'killed';
    this.killCause = cause;
    this.epochNumber++;
    const error = this.killedError();
    this.release(() => error);
    return true;
  }

  /** Suspended operations are abandoned; waiting ones start on the reset VM. */
  reset(): void {
    this.current = 'running';
    this.epochNumber++;
    const error = this.resetError();
    this.release((w) => (w.epoch === undefined ? undefined : error));
  }

  private release(outcome: (w: Waiter) => Error | undefined): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      const error = outcome(w);
      if (error === undefined) w.resolve();
      else w.reject(error);
    }
  }

  private killedError(): VmmError {
    return new VmmError('vm_killed', `VM "${this.vm}" was killed (${this.killCause}); a VM reset (control resetVm) revives it`);
  }

  private resetError(): VmmError {
    return new VmmError('vm_reset', `VM "${this.vm}" was reset while this operation waited; it was abandoned`);
  }
}
