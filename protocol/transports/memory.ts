/**
 * An in-process connection pair. Delivery is asynchronous, as on a socket: a write is seen by
 * the peer in a later turn of the event loop (setImmediate, so a busy request loop still
 * yields to timers and I/O), and each chunk is copied so the writer may reuse its buffer.
 */
import { BaseConnection, type Connection } from './connection.js';

class MemoryConnection extends BaseConnection {
  readonly peer = 'memory';
  other!: MemoryConnection;
  private readonly inbox: Uint8Array[] = [];
  private scheduled = false;

  write(chunk: Uint8Array): void {
    if (this.closed || chunk.length === 0) return;
    this.other.receive(chunk.slice());
  }

  close(): void {
    if (!this.beginClose()) return;
    this.other.receive(undefined);
    setImmediate(() => this.finished());
  }

  /** Queues a chunk, or the end of the stream (undefined), for delivery in a later turn. */
  private receive(chunk: Uint8Array | undefined): void {
    if (this.closed) return;
    this.inbox.push(chunk ?? END);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    for (const chunk of this.inbox.splice(0)) {
      if (this.closed) return;
      if (chunk === END) {
        this.beginClose();
        this.finished();
        return;
      }
      this.deliver(chunk);
    }
  }
}

const END = new Uint8Array(0);

/** Two connected ends: what one writes, the other receives. */
export function createMemoryPair(): [Connection, Connection] {
  const a = new MemoryConnection();
  const b = new MemoryConnection();
  a.other = b;
  b.other = a;
  return [a, b];
}
