/**
 * A monitor: the higher VTL of one VM, in the manner of Hyper-V's VSM (docs/register-intercepts.md),
 * as a client of a pinbox server's control endpoint in the monitor role. It sets which register
 * accesses of its VM's vCPUs are intercepted and decides each one.
 *
 *   const monitor = await MonitorClient.connect('unix:/tmp/pinbox.ctl', { vm: 'harden', token });
 *   await monitor.setRegisterIntercepts({ control: hvCrInterceptBit('IdtrWrite') | hvCrInterceptBit('Cr4Write'), cr4Mask: X86_CR4_SMEP });
 *   await monitor.decide((i) => (i.intercept === 'IdtrWrite' ? { action: 'deny' } : { action: 'allow' }));
 */
import {
  ClientSession, type Connection, connect as openConnection, type Event, type HvCrInterceptName, type PinboxAnswer,
  type ResultOf,
} from '../protocol/index.js';

export interface MonitorConnectOptions {
  /** The VM to watch over (default "default"). */
  readonly vm?: string;
  /** The server's control token. */
  readonly token: string;
  /** Names this client in the server's logs. */
  readonly client?: string;
}

/** One intercept waiting for the monitor, from its `intercept_pending` event. */
export interface PendingIntercept {
  readonly seq: bigint;
  readonly vcpu: number;
  readonly rip: bigint;
  readonly intercept: HvCrInterceptName;
  readonly msr: number | undefined;
  readonly oldValue: bigint;
  readonly newValue: bigint;
  readonly oldLimit: number;
  readonly newLimit: number;
}

export type InterceptDecision = (intercept: PendingIntercept) => PinboxAnswer | Promise<PinboxAnswer>;

export interface RegisterInterceptsRequest {
  /** One vCPU; default: every vCPU of the VM. */
  readonly vcpu?: number;
  /** HV_REGISTER_CR_INTERCEPT_CONTROL (hvCrInterceptBit() of each name). */
  readonly control: bigint;
  readonly cr0Mask?: bigint;
  readonly cr4Mask?: bigint;
  readonly miscEnableMask?: bigint;
}

export class MonitorClient {
  private constructor(
    private readonly session: ClientSession,
    /** The VM this monitor watches over. */
    readonly vm: string,
  ) {}

  /** Connects to a control endpoint (a URL or a Connection) and says hello as the VM's monitor. */
  static async connect(target: string | Connection, options: MonitorConnectOptions): Promise<MonitorClient> {
    const connection = typeof target === 'string' ? await openConnection(target) : target;
    const session = new ClientSession(connection);
    try {
      const hello = await session.hello({
        role: 'monitor', token: options.token, vm: options.vm ?? 'default', ...(options.client !== undefined && { client: options.client }),
      });
      return new MonitorClient(session, hello.vm ?? options.vm ?? 'default');
    } catch (e) {
      session.close();
      throw e;
    }
  }

  async setRegisterIntercepts(r: RegisterInterceptsRequest): Promise<void> {
    await this.session.request('setRegisterIntercepts', {
      control: r.control,
      ...(r.vcpu !== undefined && { vcpu: r.vcpu }),
      ...(r.cr0Mask !== undefined && { cr0Mask: r.cr0Mask }),
      ...(r.cr4Mask !== undefined && { cr4Mask: r.cr4Mask }),
      ...(r.miscEnableMask !== undefined && { miscEnableMask: r.miscEnableMask }),
    });
  }

  getRegisterIntercepts(vcpu: number): Promise<ResultOf<'getRegisterIntercepts'>> {
    return this.session.request('getRegisterIntercepts', { vcpu });
  }

  /** A standing answer to every intercept (null: none). */
  async setInterceptReply(reply: PinboxAnswer | null): Promise<void> {
    await this.session.request('setInterceptReply', { reply });
  }

  /**
   * Decides each intercept from now on with `decision`, and hears of VM resets and INITs (after
   * which a monitor arms its intercepts again) through `onEvent`.
   */
  async decide(decision: InterceptDecision, onEvent?: (event: Event) => void): Promise<void> {
    const { sub } = await this.session.request('watchIntercepts', {});
    this.session.onEvent(sub, (e) => {
      if (e.name !== 'intercept_pending') {
        onEvent?.(e);
        return;
      }
      const f = e.fields as Record<string, bigint | string>;
      const pending: PendingIntercept = {
        seq: e.seq, vcpu: e.vcpu ?? 0, rip: e.rip ?? 0n, intercept: f.intercept as HvCrInterceptName,
        msr: f.msr === undefined ? undefined : Number(f.msr), oldValue: f.old_value as bigint, newValue: f.new_value as bigint,
        oldLimit: Number(f.old_limit), newLimit: Number(f.new_limit),
      };
      void Promise.resolve(decision(pending))
        .then((a) => this.session.request('answerIntercept', { seq: pending.seq, ...a }))
        .catch(() => {
          // The connection went away: the server denies what was pending (fail closed).
        });
    });
  }

  close(): void {
    this.session.close();
  }
}
