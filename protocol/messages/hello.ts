/**
 * The handshake (PROTOCOL.md §3). `hello` is the first request on every connection; it fixes
 * the protocol version and the connection's role for the rest of its life.
 */
import { object, oneOf, optional, string, u32 } from '../schema/index.js';
import { vmName } from './common.js';
import { op } from './op.js';

export const role = oneOf(['guest', 'control']);

export const helloParams = object({
  version: u32,
  role,
  /** guest: the VM to attach to (default "default"). */
  vm: optional(vmName),
  /** guest: the vCPU to attach to (default 0). */
  vcpu: optional(u32),
  /** control: the secret the server was started with (required for control). */
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
});

export const HELLO = op('any', helloParams, helloResult);
