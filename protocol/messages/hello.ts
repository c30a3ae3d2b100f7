/**
 * The handshake (PROTOCOL.md §3). `hello` is the first request on every connection; it fixes
 * the protocol version and the connection's role for the rest of its life.
 */
import { array, object, oneOf, optional, string, u32 } from '../schema/index.js';
import { vmName } from './common.js';
import { op } from './op.js';

export const role = oneOf(['guest', 'control', 'monitor']);

/** Guest endpoint URLs a control hello result names at most. */
export const MAX_GUEST_ENDPOINTS = 8;

export const helloParams = object({
  version: u32,
  role,
  /** guest: the VM to attach to (default "default"); monitor: the VM whose higher VTL it is (default "default"). */
  vm: optional(vmName),
  /** guest: the vCPU to attach to (default 0). */
  vcpu: optional(u32),
  /** control, monitor: the secret the server was started with (required for both). */
  token: optional(string(1, 256)),
  /** Free text naming the client, for the server's logs. */
  client: optional(string(0, 128)),
});

export const helloResult = object({
  version: u32,
  role,
  server: string(0, 128),
  vm: optional(vmName),
  vcpu: optional(u32),
  vcpus: optional(u32),
  profile: optional(oneOf(['v2', 'v3'])),
  /**
   * control: the URLs of the server's guest endpoint as bound, for a control client that also
   * drives guests (the conformance runner). A wildcard TCP host (0.0.0.0) means the host the
   * client reached the control endpoint by.
   */
  guestEndpoints: optional(array(string(1, 1024), 1, MAX_GUEST_ENDPOINTS)),
});

export const HELLO = op('any', helloParams, helloResult);
