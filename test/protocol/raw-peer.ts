/**
 * A peer that writes arbitrary bytes and reads decoded messages: how the session tests play a
 * broken or hostile client (or server) that the ClientSession would never be.
 */
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import { FrameReader, frameBody } from '../../protocol/framing.js';
import type { Connection } from '../../protocol/transports/connection.js';

export class RawPeer {
  private readonly inbox: unknown[] = [];
  private readonly waiters: ((v: unknown) => void)[] = [];
  closed = false;
  private readonly closeWaiters: (() => void)[] = [];

  constructor(readonly connection: Connection) {
    const reader = new FrameReader({
      frame: (body) => this.arrive(decodeMsgpack(body)),
      error: (e) => this.arrive({ readerError: e.code }),
    }, 64 << 20);
    connection.onData((chunk) => reader.push(chunk));
    connection.onClose(() => {
      this.closed = true;
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  /** Sends a value as one well-formed frame. */
  send(value: unknown): void {
    this.connection.write(frameBody(encodeMsgpack(value), 64 << 20));
  }

  /** Sends a body (hex) with a correct length prefix. */
  sendBody(hex: string): void {
    this.connection.write(frameBody(Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'))));
  }

  /** Sends raw bytes, prefix and all. */
  sendBytes(bytes: Uint8Array): void {
    this.connection.write(bytes);
  }

  /** The next message from the other side. */
  next(): Promise<any> {
    const v = this.inbox.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private arrive(v: unknown): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.inbox.push(v);
  }
}
