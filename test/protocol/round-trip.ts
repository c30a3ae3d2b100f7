/** Sends every sample op through a pair of client sessions (guest and control) and checks each result. */
import type { ExecutionContext } from 'ava';
import { ClientSession } from '../../protocol/client-session.js';
import { CONTROL_OPS, GUEST_OPS, type Op } from '../../protocol/messages/index.js';
import type { Connection } from '../../protocol/transports/connection.js';
import { CONTROL_TOKEN } from './echo-handler.js';
import { SAMPLES } from './samples.js';

export async function roundTripEveryOp(t: ExecutionContext, guestConnection: Connection, controlConnection: Connection): Promise<void> {
  const guest = new ClientSession(guestConnection);
  const { version: _version, ...helloOptions } = SAMPLES.hello.params;
  t.deepEqual(await guest.hello(helloOptions as never), SAMPLES.hello.result);
  const control = new ClientSession(controlConnection);
  t.deepEqual(await control.hello({ role: 'control', token: CONTROL_TOKEN }), { version: 1, role: 'control', server: 'pinbox' });

  // All at once: pipelined on both connections.
  const ops = [...Object.keys(GUEST_OPS), ...Object.keys(CONTROL_OPS)] as Exclude<Op, 'hello'>[];
  const results = await Promise.all(ops.map((op) => {
    const client = Object.hasOwn(GUEST_OPS, op) ? guest : control;
    return client.request(op, SAMPLES[op].params as never);
  }));
  ops.forEach((op, i) => t.deepEqual(results[i], SAMPLES[op].result, op));
  guest.close();
  control.close();
}
