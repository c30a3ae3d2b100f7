/**
 * The one thing sessions need from a transport: an ordered, reliable duplex of byte chunks.
 * Chunk boundaries mean nothing (framing finds the frames); every transport carries the same
 * frames.
 */
export interface Connection {
  /** Who is on the other end, for logs: `unix:/run/pinbox.sock`, `tcp:127.0.0.1:40312`, `memory`, `stdio`. */
  readonly peer: string;
  readonly closed: boolean;
  /** Queues bytes for the peer. Writing to a closed connection does nothing. */
  write(chunk: Uint8Array): void;
  /** Receives chunks in order. Chunks that arrive before the first listener are kept for it. */
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Called once when the connection is gone, with the error that ended it if any. */
  onClose(listener: (error?: Error) => void): void;
  /** Sends what is queued, then closes. */
  close(): void;
  /**
   * Bytes written and not yet taken by the transport (a socket's buffer in this process): what
   * a peer that does not read makes the writer hold. Absent or 0 where writes do not queue.
   */
  readonly unsentBytes?: number;
  /** Stops handing received chunks to the listeners (and, on a socket, stops reading it), until resumed. */
  pauseReading?(): void;
  resumeReading?(): void;
  /** Called whenever everything queued has been sent (unsentBytes fell back to 0). */
  onDrain?(listener: () => void): void;
}

/** Listener bookkeeping shared by every transport: early chunks, close-once, listener isolation. */
export abstract class BaseConnection implements Connection {
  abstract readonly peer: string;
  private readonly dataListeners: ((chunk: Uint8Array) => void)[] = [];
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  private readonly drainListeners: (() => void)[] = [];
  private early: Uint8Array[] | undefined = [];
  /** Chunks received while reading is paused, in order. */
  private held: Uint8Array[] | undefined;
  private isClosed = false;
  private isClosing = false;
  private closeError: Error | undefined;

  /** True from the moment close() is called or the peer went away. */
  get closed(): boolean {
    return this.isClosed || this.isClosing;
  }

  abstract write(chunk: Uint8Array): void;
  abstract close(): void;

  get unsentBytes(): number {
    return 0;
  }

  pauseReading(): void {
    this.held ??= [];
  }

  resumeReading(): void {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) for (const chunk of held) this.deliver(chunk);
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /** Everything queued was sent: tell the drain listeners. */
  protected drained(): void {
    for (const listener of this.drainListeners) listener();
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.dataListeners.push(listener);
    const early = this.early;
    this.early = undefined;
    if (early) for (const chunk of early) this.deliver(chunk);
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.isClosed) queueMicrotask(() => listener(this.closeError));
    else this.closeListeners.push(listener);
  }

  /**
   * Hands a received chunk to the listeners. A listener that throws has a bug; the connection
   * is closed with that error rather than letting it escape into the event loop and end the
   * process.
   */
  protected deliver(chunk: Uint8Array): void {
    if (this.early) {
      this.early.push(chunk);
      return;
    }
    if (this.held !== undefined) {
      this.held.push(chunk);
      return;
    }
    for (const listener of this.dataListeners) {
      try {
        listener(chunk);
      } catch (e) {
        this.close();
        this.finished(e instanceof Error ? e : new Error(String(e)));
        return;
      }
    }
  }

  /** Marks the start of closing; false if closing had already begun (close once). */
  protected beginClose(): boolean {
    if (this.closed) return false;
    this.isClosing = true;
    return true;
  }

  /** The transport is gone: tell the close listeners, once. */
  protected finished(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.isClosing = true;
    this.closeError = error;
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}
