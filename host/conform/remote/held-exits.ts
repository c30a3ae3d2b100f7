/**
 * Waiting for a vCPU to sit in a held exit (PROTOCOL.md §6 holdExit): the server pushes an
 * `exit_held` event on the control connection's subscription at that moment. A waiter is
 * registered before the guest request that will exit is sent, so no event can come before it.
 */
import type { ClientSession } from '../../../protocol/client-session.js';
import type { Event } from '../../../protocol/messages/index.js';

export const HELD_EVENT = 'exit_held';

export interface HeldWait {
  /** Resolves when the vCPU sits in its held exit. */
  readonly held: Promise<void>;
  /** Stops waiting (the guest request finished without a user-space exit). */
  cancel(): void;
}

export class HeldExits {
  private readonly waiting = new Map<string, () => void>();

  constructor(session: ClientSession, sub: number) {
    session.onEvent(sub, (event) => this.seen(event));
  }

  wait(vm: string, vcpu: number): HeldWait {
    const key = keyOf(vm, vcpu);
    const held = new Promise<void>((resolve) => this.waiting.set(key, resolve));
    return { held, cancel: () => this.waiting.delete(key) };
  }

  private seen(event: Event): void {
    if (event.name !== HELD_EVENT || event.vcpu === undefined) return;
    const key = keyOf(event.vm, event.vcpu);
    const resolve = this.waiting.get(key);
    if (resolve === undefined) return;
    this.waiting.delete(key);
    resolve();
  }
}

function keyOf(vm: string, vcpu: number): string {
  return `${vm}/${vcpu}`;
}
