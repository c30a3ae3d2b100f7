/**
 * pinbox/control: drive a running pinbox server from its control endpoint — the KVM API of any of
 * its VMs, resets, INIT, snapshots, pause and resume, how MSR exits are answered, held exits, and
 * its events, by subscription or by page; the CR filter (docs/cr-filter.md); and, as a
 * MonitorClient, the higher VTL of one VM (docs/register-intercepts.md).
 *
 * ```ts
 * import { ControlClient, eventText } from 'pinbox/control';
 * const ctl = await ControlClient.connect('unix:/tmp/pinbox.ctl');   // the token from /tmp/pinbox.ctl.token
 * await ctl.subscribe({ vm: 'harden', events: ['heki_denial'] }, (e) => console.log(eventText(e)));
 * ```
 *
 * See the README's "Control clients" section and examples/control-watch.ts.
 */
export {
  ControlClient, type ControlConnectOptions, type CrFilterMasks, type HeldExit, type MsrEntry, type MsrFilter, type Regs, type Sregs,
  type Stats, type SubscribeFilter, type Subscription,
} from './control-client.js';
export {
  MonitorClient, type InterceptDecision, type MonitorConnectOptions, type PendingIntercept, type RegisterInterceptsRequest,
} from './monitor-client.js';
export { defaultTokenFile, readTokenFile, resolveToken, type TokenSource } from './token.js';
/** Re-exported so that a control client needs no second import for what it handles. */
export {
  EVENT_CATALOGUE, EVENT_NAMES, type EventName, type LoggedEvent as Event, type EventFieldValue, encodeEventLine, decodeEventLine,
  readTrace, eventText, ProtocolError, RemoteError, type MsrExitReply, type PinboxAnswer, UNTOUCHED,
} from '../protocol/index.js';
