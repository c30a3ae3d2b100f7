/**
 * The control side of pinbox's CR-hardening extensions (docs/cr-filter.md,
 * docs/register-intercepts.md): the CR filter's control ops, and a monitor — the higher VTL of
 * one VM. It speaks only the protocol.
 */
export { setCrExitReply, setCrFilter, type CrFilterMasks } from './cr-filter.js';
export {
  MonitorClient, type InterceptDecision, type MonitorConnectOptions, type PendingIntercept, type RegisterInterceptsRequest,
} from './monitor-client.js';
