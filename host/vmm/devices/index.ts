/**
 * The devices a VM's user space answers ports with, as QEMU's ISA bus does for a PC: the
 * serial console at 0x3f8 (uart16550.ts) and, when asked for, the exit port at 0xf4
 * (debug-exit.ts). A port nothing claims reads all ones and drops writes (an open ISA bus).
 */
import { COM1_BASE, UART_PORTS, Uart16550 } from './uart16550.js';
import { DEBUG_EXIT_PORT } from './debug-exit.js';
import { Console } from './console.js';
import type { EventLog } from '../events/index.js';

export { Console, consoleText, MAX_CONSOLE_LINE, type ConsoleListener } from './console.js';
export { COM1_BASE, Uart16550 } from './uart16550.js';
export { DEBUG_EXIT_PORT, debugExitStatus } from './debug-exit.js';

export interface DeviceOptions {
  /** isa-debug-exit at 0xf4 (`pinbox run`): a write ends the run. */
  readonly debugExit?: boolean;
}

/** What an OUT did, for the operation that made it. */
export type PortWrite =
  | { readonly kind: 'none' }
  | { readonly kind: 'console'; readonly byte: number }
  | { readonly kind: 'exit'; readonly value: number };

const NONE: PortWrite = { kind: 'none' };

export class PortDevices {
  readonly console: Console;
  private uart: Uart16550;
  private readonly debugExit: boolean;
  /** Set by the UART's transmit during one write(). */
  private sent = -1;

  constructor(log: EventLog, vm: string, options: DeviceOptions = {}) {
    this.console = new Console(log, vm);
    this.uart = this.powerOn();
    this.debugExit = options.debugExit === true;
  }

  /** A VM reset: the UART as at power-on; what a vCPU left of a line is sent first. */
  reset(): void {
    this.console.flush();
    this.uart = this.powerOn();
  }

  private powerOn(): Uart16550 {
    return new Uart16550((byte) => {
      this.sent = byte;
    });
  }

  /** IN of `size` bytes: the device's answer, all ones where none answers. */
  read(port: number, size: 1 | 2 | 4): number {
    const ones = 2 ** (8 * size) - 1;
    const offset = port - COM1_BASE;
    // A wider access reads the register in its low byte; the UART drives nothing above it.
    if (offset >= 0 && offset < UART_PORTS) return this.uart.read(offset);
    return ones;
  }

  /** OUT of `value` by vCPU `vcpu` at `rip`. */
  write(vcpu: number, port: number, value: number, rip: bigint): PortWrite {
    const offset = port - COM1_BASE;
    if (offset >= 0 && offset < UART_PORTS) {
      this.sent = -1;
      this.uart.write(offset, value);
      if (this.sent < 0) return NONE;
      const byte = this.sent;
      this.console.byte(vcpu, byte, rip);
      return { kind: 'console', byte };
    }
    if (port === DEBUG_EXIT_PORT && this.debugExit) return { kind: 'exit', value };
    return NONE;
  }
}
