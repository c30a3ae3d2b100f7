/**
 * The framing of gdb's remote serial protocol ("Overview" of the Remote Protocol appendix in
 * gdb's manual): `$payload#cs` with cs the payload's byte sum mod 256 in two hex digits, '+' and
 * '-' acknowledgements, `}` escaping (the next byte XOR 0x20), and a lone 0x03 — Ctrl-C — outside
 * any packet. The reader is fed whatever bytes arrive from the client and never holds more than
 * the packet size it announced (qSupported PacketSize): a longer packet is discarded whole, and
 * the stub answers it with an error.
 */

/** The largest payload accepted, and announced to gdb (PacketSize, in hex there). */
export const PACKET_SIZE = 0x4000;

export type Received =
  | { readonly kind: 'packet'; readonly payload: string }
  /** A packet whose checksum does not match: gdb is asked to send it again ('-'). */
  | { readonly kind: 'corrupt' }
  /** A packet longer than PACKET_SIZE, discarded. */
  | { readonly kind: 'oversized' }
  | { readonly kind: 'interrupt' }
  | { readonly kind: 'ack' }
  | { readonly kind: 'nack' };

const DOLLAR = 0x24, HASH = 0x23, ESCAPE = 0x7d, STAR = 0x2a;

export class PacketReader {
  private state: 'idle' | 'body' | 'sum1' | 'sum2' = 'idle';
  private body: number[] = [];
  private sum = 0;
  private given = 0;
  private escaped = false;
  private oversized = false;

  /** The events in `chunk`, in order. */
  feed(chunk: Uint8Array): Received[] {
    const out: Received[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'idle':
          if (b === DOLLAR) this.start();
          else if (b === 0x03) out.push({ kind: 'interrupt' });
          else if (b === 0x2b) out.push({ kind: 'ack' });
          else if (b === 0x2d) out.push({ kind: 'nack' });
          // Anything else between packets is line noise: ignored, as gdb's stubs do.
          break;
        case 'body':
          if (b === HASH && !this.escaped) {
            this.state = 'sum1';
            break;
          }
          this.sum = (this.sum + b) & 0xff;
          if (this.escaped) {
            this.escaped = false;
            this.push(b ^ 0x20);
          } else if (b === ESCAPE) {
            this.escaped = true;
          } else {
            this.push(b);
          }
          break;
        case 'sum1':
          this.given = hexDigit(b) << 4;
          this.state = 'sum2';
          break;
        case 'sum2': {
          this.given |= hexDigit(b);
          this.state = 'idle';
          if (this.oversized) out.push({ kind: 'oversized' });
          else if (this.given !== this.sum) out.push({ kind: 'corrupt' });
          else out.push({ kind: 'packet', payload: Buffer.from(this.body).toString('latin1') });
          this.body = [];
          break;
        }
      }
    }
    return out;
  }

  private start(): void {
    this.state = 'body';
    this.body = [];
    this.sum = 0;
    this.escaped = false;
    this.oversized = false;
  }

  private push(b: number): void {
    if (this.body.length >= PACKET_SIZE) this.oversized = true;
    else this.body.push(b);
  }
}

/** A hex digit's value; anything else counts as a wrong checksum (0x100 never matches). */
function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return 0x100;
}

/** A payload framed for sending, `$ # } *` escaped. */
export function framePacket(payload: string): Buffer {
  const bytes: number[] = [DOLLAR];
  let sum = 0;
  for (const b of Buffer.from(payload, 'latin1')) {
    if (b === DOLLAR || b === HASH || b === ESCAPE || b === STAR) {
      bytes.push(ESCAPE, b ^ 0x20);
      sum += ESCAPE + (b ^ 0x20);
    } else {
      bytes.push(b);
      sum += b;
    }
  }
  bytes.push(HASH);
  return Buffer.concat([Buffer.from(bytes), Buffer.from((sum & 0xff).toString(16).padStart(2, '0'), 'latin1')]);
}

/** Bytes as the hex gdb's packets carry them. */
export function toHex(bytes: Uint8Array | string): string {
  return Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes).toString('hex');
}

/** Hex to bytes; undefined when it is not an even run of hex digits. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** A hex number of at most 16 digits (an address, a length), or undefined. */
export function parseHexNumber(s: string): bigint | undefined {
  return /^[0-9a-fA-F]{1,16}$/.test(s) ? BigInt(`0x${s}`) : undefined;
}
