/**
 * Where a remote target's guest connections go: the guest endpoint the server names in its
 * control hello result (PROTOCOL.md §3, `guestEndpoints`). A wildcard TCP host means the host
 * the control endpoint was reached by; `stdio:` cannot be dialled (connect('stdio:') would be
 * this process's own stdin and stdout).
 */
import { formatEndpoint, parseEndpoint, type Endpoint } from '../../../protocol/transports/endpoint.js';

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

export function guestEndpointUrl(controlUrl: string, guestEndpoints: readonly string[] | undefined): string {
  if (guestEndpoints === undefined || guestEndpoints.length === 0) {
    throw new Error(`the pinbox server at ${controlUrl} does not say where its guest endpoint is (no guestEndpoints in its control hello: a server older than the remote conformance target)`);
  }
  const control = parseEndpoint(controlUrl);
  for (const url of guestEndpoints) {
    let guest: Endpoint;
    try {
      guest = parseEndpoint(url);
    } catch {
      continue;
    }
    if (guest.kind === 'stdio') continue;
    if (guest.kind === 'tcp' && WILDCARD_HOSTS.has(guest.host)) {
      return formatEndpoint({ ...guest, host: control.kind === 'tcp' ? control.host : '127.0.0.1' });
    }
    return url;
  }
  throw new Error(`the pinbox server at ${controlUrl} has no guest endpoint this runner can dial (it names ${guestEndpoints.join(', ')})`);
}
