/**
 * The control endpoint's secret (and a VM's guest token: the same kind of secret). A client's
 * hello must carry it; it is compared in constant time (both sides hashed first, so neither the
 * content nor the length leaks through timing). Random by default — 32 bytes from
 * crypto.randomBytes, as hex — and written to a file only its owner can read (mode 0600), for
 * control clients on the same machine.
 *
 * The file is made new, never reused (issue 9, finding 5): in a shared folder such as /tmp a
 * planted symlink could otherwise make the server overwrite another file with the token, and a
 * file someone else made beforehand (mode 0666) would let them read it. It is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (a name that exists, even as a dangling symlink, is refused: the
 * server does not start), and removed at a clean stop only if it is still the file made.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
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
   * Writes the token to a new file at `path`, readable and writable by its owner only, and
   * returns how to remove it. Throws TokenFileError, having changed nothing, when anything is at
   * `path` already (a file, a symlink, a socket).
   */
  writeFile(path: string): TokenFile {
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new TokenFileError(path, e);
    }
    // Which file we made: an inode number alone may be reused by a file made after ours is gone.
    let made: { dev: bigint; ino: bigint; ctimeNs: bigint };
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, this.value + '\n');
      const st = fstatSync(fd, { bigint: true });
      made = { dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs };
    } catch (e) {
      closeSync(fd);
      unlinkSync(path);
      throw new TokenFileError(path, e);
    }
    closeSync(fd);
    return {
      path,
      remove: () => {
        try {
          const st = lstatSync(path, { bigint: true });
          if (st.dev === made.dev && st.ino === made.ino && st.ctimeNs === made.ctimeNs) unlinkSync(path);
        } catch {
          // Gone already: nothing of ours to remove.
        }
      },
    };
  }
}

/** A token file this server made, and how to remove it (only while it is still that file). */
export interface TokenFile {
  readonly path: string;
  remove(): void;
}

/** The token file cannot be made; the message says why, and what to do. */
export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
  constructor(readonly path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    super(code === 'EEXIST'
      ? `the token file ${path} exists already; pinbox serve makes its token file new and does not reuse one it did not make (a server that was killed leaves its file behind: remove it, or name another with --token-file)`
      : code === 'ENOENT'
        ? `cannot make the token file ${path}: its folder does not exist`
        : `cannot make the token file ${path}: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A token file in a new private directory (mode 0700) of the temp dir, removed with it. */
export function privateTokenFile(token: ControlToken): TokenFile {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-'));
  try {
    const file = token.writeFile(join(dir, 'control.token'));
    return { path: file.path, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
