/** The remote conformance target: scenarios against a running `pinbox serve` (remote-target.ts). */
export { remoteTarget, type RemoteTargetOptions } from './remote-target.js';
