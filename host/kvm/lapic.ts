/**
 * The in-kernel local APIC as far as MSRs and CR8 reach it: IA32_APIC_BASE
 * (kvm_apic_set_base()), the x2APIC register MSRs 0x800–0x8ff (kvm_x2apic_msr_read/write(),
 * kvm_lapic_reg_read/write()), TSC_DEADLINE and the TPR behind CR8, from arch/x86/kvm/lapic.c.
 *
 * MODEL DECISIONS: pinbox delivers no interrupts and runs no APIC timer, so ICR and
 * SELF_IPI writes are checked and recorded but send nothing, EOI does nothing (no vector is
 * ever in service), TMCCT reads 0 and a TSC deadline never fires. The irqchip is "split":
 * an in-kernel LAPIC without an in-kernel IOAPIC, so directed EOI is offered to x2APIC
 * guests (kvm_apic_set_version()), and there is no CMCI LVT (no MCE model).
 */
import * as abi from '../../protocol/abi.js';
import type { GuestCpuid } from './api/cpuid.js';

/** KVM's APIC version (lapic.c APIC_VERSION) */
export const APIC_VERSION = 0x14;
/** X2APIC_ICR_RESERVED_BITS: GENMASK(31, 20) | GENMASK(17, 16) | BIT(13) (lapic.c) */
export const X2APIC_ICR_RESERVED_BITS = 0xfff32000n;

const reg = (offset: number): number => offset >> 4;

/** Registers readable through x2APIC MSRs: kvm_lapic_readable_reg_mask() in x2APIC mode. */
const X2APIC_READABLE = new Set<number>([
  abi.APIC_ID, abi.APIC_LVR, abi.APIC_TASKPRI, abi.APIC_PROCPRI, abi.APIC_LDR, abi.APIC_SPIV,
  ...Array.from({ length: 8 }, (_, i) => abi.APIC_ISR + 0x10 * i),
  ...Array.from({ length: 8 }, (_, i) => abi.APIC_TMR + 0x10 * i),
  ...Array.from({ length: 8 }, (_, i) => abi.APIC_IRR + 0x10 * i),
  abi.APIC_ESR, abi.APIC_ICR, abi.APIC_LVTT, abi.APIC_LVTTHMR, abi.APIC_LVTPC, abi.APIC_LVT0,
  abi.APIC_LVT1, abi.APIC_LVTERR, abi.APIC_TMICT, abi.APIC_TMCCT, abi.APIC_TDCR,
]);

const LVT_MASK = abi.APIC_LVT_MASKED | abi.APIC_SEND_PENDING | abi.APIC_VECTOR_MASK;
const LINT_MASK = LVT_MASK | abi.APIC_MODE_MASK | abi.APIC_INPUT_POLARITY | abi.APIC_LVT_REMOTE_IRR | abi.APIC_LVT_LEVEL_TRIGGER;
/** The writable bits of each non-timer LVT (apic_lvt_mask[]); CMCI is absent. */
const LVT_WRITABLE = new Map<number, number>([
  [abi.APIC_LVTTHMR, LVT_MASK | abi.APIC_MODE_MASK],
  [abi.APIC_LVTPC, LVT_MASK | abi.APIC_MODE_MASK],
  [abi.APIC_LVT0, LINT_MASK],
  [abi.APIC_LVT1, LINT_MASK],
  [abi.APIC_LVTERR, LVT_MASK],
]);
const ALL_LVTS = [abi.APIC_LVTT, abi.APIC_LVTTHMR, abi.APIC_LVTPC, abi.APIC_LVT0, abi.APIC_LVT1, abi.APIC_LVTERR];

const CR8_VALUES: readonly bigint[] = Array.from({ length: 16 }, (_, k) => BigInt(k));

const EN = abi.MSR_IA32_APICBASE_ENABLE;
const EXTD = abi.MSR_IA32_APICBASE_EXTD;

export class LocalApic {
  /** vcpu->arch.apic_base */
  apicBase = 0n;
  /** 32-bit registers by offset >> 4 (offsets 0x000–0x3f0). */
  private readonly regs = new Uint32Array(64);
  /** The x2APIC ICR, one 64-bit register. */
  private icr = 0n;
  private tscDeadline = 0n;

  constructor(
    readonly vcpuId: number,
    private readonly cpuid: () => GuestCpuid,
  ) {}

  get x2apicMode(): boolean {
    return (this.apicBase & (EN | EXTD)) === (EN | EXTD);
  }

  private get(offset: number): number {
    return this.regs[reg(offset)]!;
  }

  private set(offset: number, value: number): void {
    this.regs[reg(offset)] = value;
  }

  /** kvm_apic_set_version(): version 0x14, 6 LVT entries, directed EOI for x2APIC guests. */
  private version(): number {
    return APIC_VERSION | (5 << 16) | (this.cpuid().x2apic ? abi.APIC_LVR_DIRECTED_EOI : 0);
  }

  private timerModeMask(): number {
    return this.cpuid().tscDeadline ? 3 << 17 : abi.APIC_LVT_TIMER_PERIODIC;
  }

  private get swEnabled(): boolean {
    return (this.get(abi.APIC_SPIV) & abi.APIC_SPIV_APIC_ENABLED) !== 0;
  }

  private tscDeadlineMode(): boolean {
    return (this.get(abi.APIC_LVTT) & this.timerModeMask()) === abi.APIC_LVT_TIMER_TSCDEADLINE;
  }

  /** kvm_lapic_reset(); at RESET also the base (enabled, at 0xfee00000, BSP for vCPU 0). */
  reset(initEvent: boolean): void {
    if (!initEvent) {
      this.setBaseUnchecked(abi.APIC_DEFAULT_PHYS_BASE | EN | (this.vcpuId === 0 ? abi.MSR_IA32_APICBASE_BSP : 0n));
      this.set(abi.APIC_ID, this.vcpuId << 24);
    }
    for (const lvt of ALL_LVTS) this.set(lvt, abi.APIC_LVT_MASKED);
    // KVM_X86_QUIRK_LINT0_REENABLED (on by default): the BSP's LINT0 is ExtINT, unmasked.
    if (this.vcpuId === 0) this.set(abi.APIC_LVT0, abi.APIC_MODE_EXTINT << 8);
    this.set(abi.APIC_DFR, 0xffffffff);
    this.set(abi.APIC_SPIV, 0xff);
    this.set(abi.APIC_TASKPRI, 0);
    if (!this.x2apicMode) this.set(abi.APIC_LDR, 0);
    this.set(abi.APIC_ESR, 0);
    this.set(abi.APIC_ICR, 0);
    this.set(abi.APIC_ICR2, 0);
    this.icr = 0n;
    this.set(abi.APIC_TDCR, 0);
    this.set(abi.APIC_TMICT, 0);
    for (let i = 0; i < 8; i++) {
      this.set(abi.APIC_IRR + 0x10 * i, 0);
      this.set(abi.APIC_ISR + 0x10 * i, 0);
      this.set(abi.APIC_TMR + 0x10 * i, 0);
    }
    this.tscDeadline = 0n;
  }

  /**
   * kvm_apic_set_base(): 1 if the value is refused. Bits 7:0 and 9, bits at and above
   * MAXPHYADDR, and EXTD without x2APIC in CPUID are reserved; EXTD without EN is invalid; a
   * guest may not go x2APIC → xAPIC or disabled → x2APIC directly (the host may).
   */
  setBase(value: bigint, hostInitiated: boolean, maxPhysAddr: number): number {
    if (value === this.apicBase) return 0;
    const reserved =
      (((1n << 64n) - 1n) & ~((1n << BigInt(maxPhysAddr)) - 1n)) | 0x2ffn | (this.cpuid().x2apic ? 0n : EXTD);
    if ((value & reserved) !== 0n) return 1;
    const mode = value & (EN | EXTD);
    if (mode === EXTD) return 1;
    if (!hostInitiated) {
      const old = this.apicBase & (EN | EXTD);
      if (old === (EN | EXTD) && mode === EN) return 1;
      if (old === 0n && mode === (EN | EXTD)) return 1;
    }
    this.setBaseUnchecked(value);
    return 0;
  }

  /** __kvm_apic_set_base(): a mode change reloads the APIC ID (and the x2APIC LDR). */
  private setBaseUnchecked(value: bigint): void {
    const old = this.apicBase;
    this.apicBase = value;
    if (((old ^ value) & EN) !== 0n && (value & EN) !== 0n) this.set(abi.APIC_ID, this.vcpuId << 24);
    if (((old ^ value) & EXTD) !== 0n) {
      if ((value & EXTD) !== 0n) {
        const id = this.vcpuId;
        this.set(abi.APIC_ID, id);
        this.set(abi.APIC_LDR, (((id >> 4) << 16) | (1 << (id & 0xf))) >>> 0);
      } else if ((value & EN) !== 0n) {
        this.set(abi.APIC_ID, this.vcpuId << 24);
      }
    }
  }

  /** kvm_x2apic_msr_read(): the value, or undefined where KVM returns 1. */
  x2apicRead(msr: number): bigint | undefined {
    if (!this.x2apicMode) return undefined;
    const offset = (msr - abi.X2APIC_MSR_FIRST) << 4;
    if (offset === abi.APIC_ICR) return this.icr;
    if (!X2APIC_READABLE.has(offset)) return undefined;
    switch (offset) {
      case abi.APIC_LVR:
        return BigInt(this.version());
      case abi.APIC_PROCPRI:
        // apic_update_ppr() with nothing in service: the PPR is the TPR.
        return BigInt(this.get(abi.APIC_TASKPRI) & 0xff);
      case abi.APIC_TMCCT:
        return 0n;
      default:
        return BigInt(this.get(offset));
    }
  }

  /** kvm_x2apic_msr_write(): 0, or 1 where KVM refuses the write. */
  x2apicWrite(msr: number, data: bigint): number {
    if (!this.x2apicMode) return 1;
    const offset = (msr - abi.X2APIC_MSR_FIRST) << 4;
    if (offset === abi.APIC_ICR) {
      if ((data & X2APIC_ICR_RESERVED_BITS) !== 0n) return 1;
      // BUSY is reserved in x2APIC mode; KVM clears it rather than fault.
      this.icr = data & ~BigInt(abi.APIC_ICR_BUSY);
      return 0;
    }
    // "Bits 63:32 are reserved in all other registers."
    if (data >> 32n) return 1;
    return this.writeRegister(offset, Number(data));
  }

  /** kvm_lapic_reg_write() in x2APIC mode. */
  private writeRegister(offset: number, val: number): number {
    switch (offset) {
      case abi.APIC_TASKPRI:
        this.set(offset, val & 0xff);
        return 0;
      case abi.APIC_EOI:
        return 0;
      case abi.APIC_SPIV: {
        const mask = 0x3ff | (this.version() & abi.APIC_LVR_DIRECTED_EOI ? abi.APIC_SPIV_DIRECTED_EOI : 0);
        this.set(offset, val & mask);
        if ((val & abi.APIC_SPIV_APIC_ENABLED) === 0) {
          for (const lvt of ALL_LVTS) this.set(lvt, (this.get(lvt) | abi.APIC_LVT_MASKED) >>> 0);
        }
        return 0;
      }
      case abi.APIC_LVTT: {
        const v = this.swEnabled ? val : val | abi.APIC_LVT_MASKED;
        this.set(offset, (v & (LVT_MASK | this.timerModeMask())) >>> 0);
        return 0;
      }
      case abi.APIC_TMICT:
        if (!this.tscDeadlineMode()) this.set(offset, val >>> 0);
        return 0;
      case abi.APIC_TDCR:
        this.set(offset, val & 0xb);
        return 0;
      case abi.APIC_ESR:
        return val !== 0 ? 1 : 0;
      case abi.APIC_SELF_IPI:
        return (val & ~abi.APIC_VECTOR_MASK) !== 0 ? 1 : 0;
      default: {
        // ID, LDR, DFR and ICR2 are read-only or absent in x2APIC mode; so is anything unlisted.
        const writable = LVT_WRITABLE.get(offset);
        if (writable === undefined) return 1;
        const v = this.swEnabled ? val : val | abi.APIC_LVT_MASKED;
        this.set(offset, (v & writable) >>> 0);
        return 0;
      }
    }
  }

  /** kvm_get_lapic_tscdeadline_msr(): 0 unless the timer is in TSC-deadline mode. */
  readTscDeadline(): bigint {
    return this.tscDeadlineMode() ? this.tscDeadline : 0n;
  }

  /** kvm_set_lapic_tscdeadline_msr(): ignored unless the timer is in TSC-deadline mode. */
  writeTscDeadline(value: bigint): void {
    if (this.tscDeadlineMode()) this.tscDeadline = value;
  }

  /** kvm_lapic_get_cr8(): CR8 is TPR[7:4]. */
  getCr8(): bigint {
    // Read at every exit (kvm_run.cr8): one of 16 prebuilt bigints, no allocation.
    return CR8_VALUES[(this.get(abi.APIC_TASKPRI) & 0xf0) >> 4]!;
  }

  /** kvm_lapic_set_tpr() */
  setCr8(cr8: bigint): void {
    this.set(abi.APIC_TASKPRI, Number(cr8 & 0xfn) << 4);
  }
}
