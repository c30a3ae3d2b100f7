/**
 * A 16550A UART as a polling guest sees it (the serial port of a PC, COM1 at 0x3f8): what the
 * drivers of kvm-unit-tests (lib/x86/io.c serial_init/serial_putchar), Linux's early console
 * (arch/x86/boot/early_serial_console.c, drivers/tty/serial/8250) and a ten-line `putc` touch.
 *
 * Registers, by offset from the base (the 16550A data sheet; QEMU hw/char/serial.c models the
 * same): 0 RBR/THR (DLL when LCR.DLAB), 1 IER (DLM when DLAB), 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR,
 * 6 MSR, 7 SCR. A byte written to THR leaves at once, so LSR always says THRE and TEMT (the
 * transmitter is empty again before the guest can look). There is no input: RBR reads 0 and
 * LSR.DR stays clear, except in loopback (MCR bit 4), where transmitted bytes come back to RBR as
 * on the chip, which is how Linux's autoconfig probes a port. IER is stored and read back but
 * raises nothing: pinbox delivers no interrupts (docs/boot.md §1), so IIR always says "none
 * pending".
 */

const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
/** IIR bit 0: no interrupt pending. Bits 7:6 say the FIFOs are enabled (FCR bit 0). */
const IIR_NO_INT = 0x01;
const IIR_FIFO = 0xc0;
/** MSR when not looped back: CTS, DSR and DCD up (a terminal is attached), as QEMU reports. */
const MSR_CONNECTED = 0xb0;
/** What the receiver holds in loopback: the chip's FIFO is 16 bytes; older bytes are overrun. */
const RX_FIFO = 16;

export const COM1_BASE = 0x3f8;
export const UART_PORTS = 8;

export class Uart16550 {
  private dll = 0x0c; // 9600 baud from the 1.8432 MHz clock, what a BIOS leaves
  private dlm = 0;
  private ier = 0;
  private fcr = 0;
  private lcr = 0x03; // 8N1
  private mcr = 0;
  private scr = 0;
  private readonly rx: number[] = [];

  /** `transmit` receives each byte the guest writes to THR (outside loopback). */
  constructor(private readonly transmit: (byte: number) => void) {}

  /** IN from base + `offset` (0..7): the register's value, one byte. */
  read(offset: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        return dlab ? this.dll : (this.rx.shift() ?? 0);
      case 1:
        return dlab ? this.dlm : this.ier;
      case 2:
        return IIR_NO_INT | (this.fcr & 1 ? IIR_FIFO : 0);
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5:
        return LSR_THRE | LSR_TEMT | (this.rx.length > 0 ? LSR_DR : 0);
      case 6:
        return this.modemStatus();
      default:
        return this.scr;
    }
  }

  /** OUT to base + `offset` (0..7) of one byte. */
  write(offset: number, value: number): void {
    const byte = value & 0xff;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) this.dll = byte;
        else if (this.mcr & MCR_LOOP) this.loopBack(byte);
        else this.transmit(byte);
        return;
      case 1:
        if (dlab) this.dlm = byte;
        else this.ier = byte & 0x0f; // the upper four bits are reserved and read 0
        return;
      case 2:
        // FCR bits 1 and 2 clear the FIFOs and then clear themselves; only the enable is kept.
        if (byte & 0x02) this.rx.length = 0;
        this.fcr = byte & 0xc9;
        return;
      case 3:
        this.lcr = byte;
        return;
      case 4:
        this.mcr = byte & 0x1f;
        return;
      case 5:
      case 6:
        return; // LSR and MSR are read-only (writes only matter to factory tests)
      default:
        this.scr = byte;
    }
  }

  /** In loopback the modem outputs come back as inputs: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD. */
  private modemStatus(): number {
    const m = this.mcr;
    if (!(m & MCR_LOOP)) return MSR_CONNECTED;
    return ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
  }

  private loopBack(byte: number): void {
    if (this.rx.length >= RX_FIFO) this.rx.shift();
    this.rx.push(byte);
  }
}
