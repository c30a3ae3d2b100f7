/**
 * A stand-in for the VMM: it answers every op with its hand-written sample result, after
 * checking that the params it received are exactly the sample's (deep and strict: a Buffer
 * where a Uint8Array belongs, or a number where a bigint belongs, is a difference).
 */
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from '../../protocol/errors.js';
import type { HelloParams } from '../../protocol/messages/index.js';
import type { HandlerRequest, HelloReply, ServerSession, SessionHandler } from '../../protocol/server-session.js';
import { SAMPLES } from './samples.js';

export const CONTROL_TOKEN = 'sample-token';

export function sampleHelloReply(): HelloReply {
  const { version: _v, role: _r, ...reply } = SAMPLES.hello.result;
  return reply as HelloReply;
}

export class EchoHandler implements SessionHandler {
  readonly received: HandlerRequest[] = [];
  readonly closedSessions: ServerSession[] = [];

  hello(_session: ServerSession, hello: HelloParams): HelloReply {
    if (hello.role === 'control') {
      if (hello.token !== CONTROL_TOKEN) throw new ProtocolError('bad_token', 'the control token is wrong');
      return { server: 'pinbox' };
    }
    if (!isDeepStrictEqual(hello, SAMPLES.hello.params)) {
      throw new ProtocolError('invalid_message', `echo: hello ${describe(hello)} differs from the sample`);
    }
    return sampleHelloReply();
  }

  request(_session: ServerSession, request: HandlerRequest): unknown {
    this.received.push(request);
    const { op, ...params } = request;
    const batchIndex = (SAMPLES.batch.params.ops as unknown[]).findIndex((item) => isDeepStrictEqual(item, request));
    if (batchIndex >= 0) {
      const outcome = (SAMPLES.batch.result.results as { ok: boolean; result?: unknown; error?: { code: string; message: string; errno?: string } }[])[batchIndex]!;
      if (outcome.ok) return outcome.result;
      throw Object.assign(new Error(outcome.error!.message), { errno: outcome.error!.errno });
    }
    if (!isDeepStrictEqual(params, SAMPLES[op].params)) {
      throw new ProtocolError('invalid_message', `echo: ${op} params ${describe(params)} differ from the sample`);
    }
    return SAMPLES[op].result;
  }

  closed(session: ServerSession): void {
    this.closedSessions.push(session);
  }
}

function describe(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `${x.constructor.name}(${x.length})` : x));
}
