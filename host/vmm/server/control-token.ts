/**
 * The control endpoint's secret. A control client's hello must carry it; it is compared in
 * constant time (both sides hashed first, so neither the content nor the length leaks through
 * timing). Random by default — 32 bytes from crypto.randomBytes, as hex — and written to a
 * file only its owner can read (mode 0600), for control clients on the same machine.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdtempSync, openSync, closeSync, writeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the protocol lets a token be: 1..256 bytes (hello `token: str(1..256)`). */
const MAX_TOKEN_BYTES = 256;

export class ControlToken {
  private readonly digest: Buffer;

  constructor(readonly value: string) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes < 1 || bytes > MAX_TOKEN_BYTES) throw new RangeError(`a control token is 1 to ${MAX_TOKEN_BYTES} bytes, got ${bytes}`);
    this.digest = sha256(value);
  }

  /** A fresh random token. */
  static random(): ControlToken {
    return new ControlToken(randomBytes(32).toString('hex'));
  }

  /** Constant-time comparison. */
  matches(candidate: string): boolean {
    return timingSafeEqual(this.digest, sha256(candidate));
  }

  /**
   * Writes the token to `path`, readable and writable by its owner only. The file is created
   * with mode 0600 (and chmod'ed, in case it existed with another mode) before the token is
   * written into it.
   */
  writeFile(path: string): void {
    const fd = openSync(path, 'w', 0o600);
    try {
      chmodSync(path, 0o600);
      writeSync(fd, this.value + '\n');
    } finally {
      closeSync(fd);
    }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A private directory for a token file when the control endpoint is not a unix socket. */
export function privateTokenFile(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-'));
  return { path: join(dir, 'control.token'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
