/**
 * Guests compiled at test time with the machine's gcc (and binutils' objcopy): the compile line
 * the C guest library documents (guest-sdk/c/README.md), and whether the tools are here at all.
 * A test that needs them registers itself only where they are, and a `test.todo('… not run:
 * why')` elsewhere — shown by ava as to-do, never counted as passed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why a command cannot be used here, or undefined when `cmd --version` runs. */
export function missingTool(cmd: string): string | undefined {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  if (r.error !== undefined) return `${cmd} is not on PATH`;
  return r.status === 0 ? undefined : `${cmd} --version exited with ${r.status}`;
}

/** Why freestanding x86-64 guests cannot be built here (gcc and objcopy on x86-64), or undefined. */
export function whyNoGuestCompiler(): string | undefined {
  if (process.arch !== 'x64') return `this is ${process.arch}, and the guests are x86-64 code built by the native gcc`;
  return missingTool('gcc') ?? missingTool('objcopy');
}

/** The flags of guest-sdk/c/README.md's compile line, less the optimisation level. */
export const GUEST_CFLAGS = [
  '-ffreestanding', '-mgeneral-regs-only', '-mno-red-zone', '-nostdlib', '-static', '-fno-pic', '-fno-pie',
  '-fno-stack-protector', '-fcf-protection=none', '-fno-asynchronous-unwind-tables', '-mcx16',
  '-Wl,--no-warn-rwx-segments', '-Wl,--build-id=none',
];

export interface GuestBuild {
  /** The ELF executable. */
  readonly elf: Uint8Array;
  /** Its loadable contents as a flat binary (objcopy -O binary). */
  readonly flat: Uint8Array;
  readonly elfPath: string;
}

/**
 * Compiles C sources into a freestanding guest: `gcc <opt> GUEST_CFLAGS -T <script> … -lgcc`
 * (libgcc for the 128-bit division and bit helpers gcc calls). The files live in a temporary
 * folder that `cleanup` removes.
 */
export function buildGuest(sources: readonly string[], options: { opt: string; linkerScript: string; include?: readonly string[]; defines?: readonly string[] }): GuestBuild & { cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-guest-'));
  const elfPath = join(dir, 'guest.elf');
  const flatPath = join(dir, 'guest.bin');
  try {
    execFileSync('gcc', [
      ...options.opt.split(/\s+/), ...GUEST_CFLAGS, `-Wl,-T,${options.linkerScript}`, ...(options.include ?? []).map((d) => `-I${d}`),
      ...(options.defines ?? []).map((d) => `-D${d}`), '-o', elfPath, ...sources, '-lgcc',
    ], { stdio: 'pipe' });
    execFileSync('objcopy', ['-O', 'binary', elfPath, flatPath], { stdio: 'pipe' });
    return {
      elf: new Uint8Array(readFileSync(elfPath)), flat: new Uint8Array(readFileSync(flatPath)), elfPath,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`building ${sources.join(' ')} failed: ${stderr || String(e)}`);
  }
}

/** Compiles and runs C sources on the host (the expected output of a guest built from them). */
export function runHosted(sources: readonly string[], defines: readonly string[] = ['HOSTED']): string {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-host-'));
  try {
    const exe = join(dir, 'host');
    execFileSync('gcc', ['-O2', '-mcx16', ...defines.map((d) => `-D${d}`), '-o', exe, ...sources], { stdio: 'pipe' });
    return execFileSync(exe, { encoding: 'latin1' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
