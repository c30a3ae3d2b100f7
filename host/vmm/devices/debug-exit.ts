/**
 * isa-debug-exit, as QEMU's `-device isa-debug-exit,iobase=0xf4` (hw/misc/debugexit.c): a
 * write of V to the port ends the emulator with exit status (V << 1) | 1 — kvm-unit-tests and
 * many bare-metal test kernels end that way. V is the value of the OUT, of whatever width. A
 * process's exit status is 8 bits, so the shell sees ((V << 1) | 1) & 0xff: always odd, so never
 * "halted" (0) nor "bad arguments" (2), though V = 0 gives 1, as a run that stopped otherwise.
 * Reads return all ones, as from a port nothing answers (QEMU's device has no read).
 */

export const DEBUG_EXIT_PORT = 0xf4;

export function debugExitStatus(value: number): number {
  return ((value << 1) | 1) & 0xff;
}
