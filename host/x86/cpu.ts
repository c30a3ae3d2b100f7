/**
 * `Cpu`: the modelled x86-64 core as a hypervisor sees it (`GuestCpu`, guest-cpu.ts). It runs
 * guest code until an intercept, and offers register access, event injection, instruction
 * skipping, unchecked CR/MSR commits and a side-effect-free page walk.
 *
 * Values are bigint at this edge and converted once to the core's halves and numbers.
 * `run()` allocates nothing on its own besides the intercept it returns (the `budget` intercept
 * is a shared frozen object), and `skipInstruction`, `readGpr32`, `writeGpr32` are field
 * accesses, for the sub-microsecond MSR-exit round trip host/kvm aims at.
 */
import {
  MSR_CSTAR, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP,
  MSR_IA32_SYSENTER_ESP, MSR_IA32_TSC, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_STAR, MSR_SYSCALL_MASK, MSR_TSC_AUX,
  X86_EFLAGS_FIXED, EFER_LMA, DR7_FIXED_1,
} from '../../protocol/abi.js';
import { CpuCore, SEG_CS, SEG_FS, SEG_GS, SEG_SS } from './core.js';
import { invalidateFrame } from './block.js';
import { EVENT_HARDWARE, raiseEvent } from './exceptions/delivery.js';
import { DeliveryWatch, type ExceptionLoop } from './exceptions/delivery-loop.js';
import { GUEST_FAULT, pushesErrorCode } from './fault.js';
import { readFlags } from './flags.js';
import type { AccessKind, ControlRegister, GuestCpu } from './guest-cpu.js';
import { checkGuestState } from './guest-state.js';
import type { Intercept } from './intercept.js';
import { runBlocks } from './interpreter.js';
import { armBreakpoints, needsStepping } from './debug.js';
import { stepInstructions } from './stepping.js';
import { JIT_THRESHOLD } from './jit/compile.js';
import type { PhysicalMemory } from './memory.js';
import { readTsc } from './execute/system.js';
import { applyControls, setCr0, setCr3, setCr4, setEfer } from './mmu/controls.js';
import { flushTlb, syncCodeFrames, updateTlbContext } from './mmu/tlb.js';
import { ACC_FETCH, ACC_READ, ACC_WRITE, walk } from './mmu/walk.js';
import { loadSegment, setSegmentBase } from './segments.js';
import { GPR_NAMES, SEGMENT_NAMES, type GeneralRegisters, type Segment, type SystemRegisters } from './state.js';
import { toBigInt } from './registers.js';

const BUDGET_SPENT: Intercept = Object.freeze({ kind: 'budget' as const });

interface PendingEvent {
  vector: number;
  errorCode: number;
  address: number;
}

function copySegment(s: Segment): Segment {
  return { ...s };
}

function checkGprIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > 15) {
    throw new RangeError(`GPR index must be an integer 0..15, got ${index}`);
  }
}

/** A linear address from a bigint (bits 47:0, sign-extended from bit 47, as the walker uses them). */
function linearFromBigInt(v: bigint): number {
  return Number(BigInt.asIntN(48, v));
}

export interface CpuOptions {
  /** Translate hot blocks to JavaScript (default true). Off: the reference interpreter only. */
  jit?: boolean;
  /**
   * Interpreted runs of a block before it is translated (default JIT_THRESHOLD); 0 translates
   * every block before its first run, as tests do, so that translated code is what they check.
   */
  jitThreshold?: number;
}

export class Cpu extends CpuCore implements GuestCpu {
  /** RFLAGS bits 63:32 as last set by the host (reserved: non-zero makes the state invalid). */
  private rflagsHigh = 0n;
  /** A RIP the host set that is not canonical (kept exactly for getRip; the state is invalid). */
  private ripBig: bigint | null = null;
  private pending: PendingEvent | null = null;
  private readonly deliveries = new DeliveryWatch();
  private loop: ExceptionLoop | null = null;
  private delivered = 0;

  constructor(memory: PhysicalMemory, options: CpuOptions = {}) {
    super(memory);
    this.jitEnabled = options.jit ?? true;
    const threshold = options.jitThreshold ?? JIT_THRESHOLD;
    if (!Number.isInteger(threshold) || threshold < 0) throw new RangeError(`jitThreshold must be a non-negative integer, got ${threshold}`);
    this.jitThreshold = threshold;
    memory.onCodeWrite.push((frame) => invalidateFrame(this, frame));
    // New second-stage rights: drop every translation cached with the old ones (as INVEPT).
    memory.secondStage.onChange.push(() => flushTlb(this, false));
    applyControls(this);
  }

  // -------------------------------------------------------------------------------------------
  // Running
  // -------------------------------------------------------------------------------------------

  run(budget: number): Intercept {
    if (!Number.isSafeInteger(budget) || budget < 0) {
      throw new RangeError(`run() budget must be a non-negative integer, got ${budget}`);
    }
    if (!this.stateChecked) {
      const bad = this.stateProblem();
      if (bad !== null) return { kind: 'invalid_guest_state', detail: bad };
    }
    syncCodeFrames(this);
    this.stop = null;
    this.codeInvalidated = false;
    this.retireLimit = this.retired + budget;
    this.deliveries.reset();
    this.loop = null;
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      const delivered = raiseEvent(this, p.vector, p.errorCode, p.address, EVENT_HARDWARE, this.rip, true);
      if (this.pendingCr2 !== null) {
        this.cr2 = this.pendingCr2;
        this.pendingCr2 = null;
      }
      if (!delivered) return this.takeStop();
    }
    for (;;) {
      try {
        if (needsStepping(this)) stepInstructions(this);
        else runBlocks(this);
      } catch (e) {
        if (e !== GUEST_FAULT) throw e;
        const vector = this.faultVector;
        const errorCode = this.faultErrorCode;
        const address = this.faultAddress;
        if (!raiseEvent(this, vector, errorCode, address, EVENT_HARDWARE, this.rip, false)) return this.takeStop();
        // Each delivery costs the budget a unit, and an exact loop ends the run (delivery-loop.ts).
        this.retireLimit--;
        this.delivered++;
        this.loop = this.deliveries.delivered(this, vector, errorCode, address);
        if (this.loop !== null) return BUDGET_SPENT;
        continue;
      }
      if (this.stop !== null) return this.takeStop();
      if (!this.stateChecked) {
        const bad = this.stateProblem();
        if (bad !== null) return { kind: 'invalid_guest_state', detail: bad };
        continue;
      }
      if (this.retired >= this.retireLimit) return BUDGET_SPENT;
    }
  }

  private takeStop(): Intercept {
    const s = this.stop!;
    this.stop = null;
    return s;
  }

  private stateProblem(): string | null {
    if (this.ripBig !== null) return 'RIP is not canonical';
    const bad = checkGuestState(this, this.rflagsHigh);
    if (bad === null) this.stateChecked = true;
    return bad;
  }

  /** Instructions retired since the CPU was created. */
  get instructionsRetired(): number {
    return this.retired;
  }

  /** Faults raised by guest instructions and delivered since the CPU was created (each cost a budget unit). */
  get eventsDelivered(): number {
    return this.delivered;
  }

  /**
   * The exception loop that ended the last run() (it returned the `budget` intercept at once),
   * or null: what a VMM's watchdog reports (delivery-loop.ts).
   */
  get exceptionLoop(): ExceptionLoop | null {
    return this.loop;
  }

  // -------------------------------------------------------------------------------------------
  // Registers
  // -------------------------------------------------------------------------------------------

  getRegs(): GeneralRegisters {
    const r = {} as GeneralRegisters;
    for (let k = 0; k < 16; k++) r[GPR_NAMES[k]!] = toBigInt(this.lo[k]!, this.hi[k]!);
    r.rip = this.getRip();
    r.rflags = this.getRflags();
    return r;
  }

  setRegs(regs: GeneralRegisters): void {
    for (let k = 0; k < 16; k++) {
      const v = regs[GPR_NAMES[k]!];
      if (typeof v !== 'bigint') throw new TypeError(`setRegs: ${GPR_NAMES[k]} must be a bigint`);
    }
    if (typeof regs.rip !== 'bigint' || typeof regs.rflags !== 'bigint') throw new TypeError('setRegs: rip and rflags must be bigints');
    for (let k = 0; k < 16; k++) this.writeGpr(k, regs[GPR_NAMES[k]!]);
    this.setRip(regs.rip);
    this.setRflags(regs.rflags);
  }

  readGpr(index: number): bigint {
    checkGprIndex(index);
    return toBigInt(this.lo[index]!, this.hi[index]!);
  }

  writeGpr(index: number, value: bigint): void {
    checkGprIndex(index);
    const v = BigInt.asUintN(64, value);
    this.lo[index] = Number(v & 0xffffffffn) | 0;
    this.hi[index] = Number(v >> 32n) | 0;
  }

  readGpr32(index: number): number {
    return this.lo[index]! >>> 0;
  }

  writeGpr32(index: number, value: number): void {
    this.lo[index] = value | 0;
    this.hi[index] = 0;
  }

  getRip(): bigint {
    if (this.ripBig !== null) return this.ripBig;
    return BigInt.asUintN(64, BigInt(this.rip));
  }

  setRip(rip: bigint): void {
    const s = BigInt.asIntN(64, rip);
    if (s >= -(1n << 47n) && s < 1n << 47n) {
      this.rip = Number(s);
      this.ripBig = null;
    } else {
      this.ripBig = BigInt.asUintN(64, rip);
      this.stateChecked = false;
    }
  }

  getRflags(): bigint {
    return (this.rflagsHigh << 32n) | BigInt(readFlags(this) >>> 0);
  }

  /** KVM_SET_REGS semantics: bit 1 is forced to 1 (kvm_set_rflags ORs X86_EFLAGS_FIXED). */
  setRflags(rflags: bigint): void {
    const v = BigInt.asUintN(64, rflags);
    this.rflagsHigh = v >> 32n;
    this.flags = (Number(v & 0xffffffffn) | X86_EFLAGS_FIXED) >>> 0;
    this.ccOp = 0;
    this.stateChecked = false;
    updateTlbContext(this);
  }

  // -------------------------------------------------------------------------------------------
  // Segments, descriptor tables, control registers
  // -------------------------------------------------------------------------------------------

  getSregs(): SystemRegisters {
    const s = this.seg;
    return {
      es: copySegment(s[0]!), cs: copySegment(s[1]!), ss: copySegment(s[2]!),
      ds: copySegment(s[3]!), fs: copySegment(s[4]!), gs: copySegment(s[5]!),
      tr: copySegment(this.tr), ldt: copySegment(this.ldt),
      gdt: { base: this.gdtBase, limit: this.gdtLimit },
      idt: { base: this.idtBase, limit: this.idtLimit },
      cr0: this.cr0, cr2: this.cr2, cr3: this.cr3, cr4: this.cr4, cr8: this.cr8,
      efer: this.efer, apicBase: this.apicBase,
    };
  }

  setSregs(sregs: SystemRegisters): void {
    for (const n of SEGMENT_NAMES) validateSegment(sregs[n], n);
    validateSegment(sregs.tr, 'tr');
    validateSegment(sregs.ldt, 'ldt');
    for (const k of ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const) {
      if (typeof sregs[k] !== 'bigint') throw new TypeError(`setSregs: ${k} must be a bigint`);
    }
    for (const t of ['gdt', 'idt'] as const) {
      const d = sregs[t];
      if (d === null || typeof d !== 'object' || typeof d.base !== 'bigint' || !Number.isInteger(d.limit) || d.limit < 0 || d.limit > 0xffff) {
        throw new TypeError(`setSregs: ${t} must be { base: bigint, limit: 0..0xffff }`);
      }
    }
    SEGMENT_NAMES.forEach((n, k) => loadSegment(this, k, copySegment(sregs[n])));
    this.tr = copySegment(sregs.tr);
    this.ldt = copySegment(sregs.ldt);
    this.gdtBase = BigInt.asUintN(64, sregs.gdt.base);
    this.gdtLimit = sregs.gdt.limit;
    this.idtBase = BigInt.asUintN(64, sregs.idt.base);
    this.idtLimit = sregs.idt.limit;
    this.cr0 = BigInt.asUintN(64, sregs.cr0);
    this.cr2 = BigInt.asUintN(64, sregs.cr2);
    this.cr3 = BigInt.asUintN(64, sregs.cr3);
    this.cr4 = BigInt.asUintN(64, sregs.cr4);
    this.cr8 = BigInt.asUintN(64, sregs.cr8);
    this.efer = BigInt.asUintN(64, sregs.efer);
    this.apicBase = BigInt.asUintN(64, sregs.apicBase);
    // vmx_get_cpl(): the CPL is SS.DPL.
    this.cpl = this.seg[SEG_SS]!.dpl;
    applyControls(this);
    flushTlb(this, false);
    updateTlbContext(this);
    this.stateChecked = false;
  }

  readCr(cr: ControlRegister): bigint {
    switch (cr) {
      case 0: return this.cr0;
      case 2: return this.cr2;
      case 3: return this.cr3;
      case 4: return this.cr4;
      case 8: return this.cr8;
      default: throw new RangeError(`readCr: no CR${cr as number} in 64-bit mode (0, 2, 3, 4, 8)`);
    }
  }

  commitCr(cr: ControlRegister, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    switch (cr) {
      case 0: setCr0(this, v); this.stateChecked = false; break;
      case 2: this.cr2 = v; break;
      case 3: setCr3(this, v); break;
      case 4: setCr4(this, v); this.stateChecked = false; break;
      case 8: this.cr8 = v; break;
      default: throw new RangeError(`commitCr: no CR${cr as number} in 64-bit mode (0, 2, 3, 4, 8)`);
    }
  }

  readMsr(index: number): bigint | undefined {
    switch (index >>> 0) {
      case MSR_EFER: return this.efer;
      case MSR_STAR: return this.star;
      case MSR_LSTAR: return this.lstar;
      case MSR_CSTAR: return this.cstar;
      case MSR_SYSCALL_MASK: return this.sfmask;
      case MSR_FS_BASE: return this.seg[SEG_FS]!.base;
      case MSR_GS_BASE: return this.seg[SEG_GS]!.base;
      case MSR_KERNEL_GS_BASE: return this.kernelGsBase;
      case MSR_IA32_SYSENTER_CS: return this.sysenterCs;
      case MSR_IA32_SYSENTER_ESP: return this.sysenterEsp;
      case MSR_IA32_SYSENTER_EIP: return this.sysenterEip;
      case MSR_IA32_TSC: return readTsc(this);
      case MSR_TSC_AUX: return this.tscAux;
      default: return undefined;
    }
  }

  commitMsr(index: number, value: bigint): boolean {
    const v = BigInt.asUintN(64, value);
    switch (index >>> 0) {
      case MSR_EFER: setEfer(this, v); this.stateChecked = false; return true;
      case MSR_STAR: this.star = v; return true;
      case MSR_LSTAR: this.lstar = v; return true;
      case MSR_CSTAR: this.cstar = v; return true;
      case MSR_SYSCALL_MASK: this.sfmask = v; return true;
      case MSR_FS_BASE: setSegmentBase(this, SEG_FS, v); this.stateChecked = false; return true;
      case MSR_GS_BASE: setSegmentBase(this, SEG_GS, v); this.stateChecked = false; return true;
      case MSR_KERNEL_GS_BASE: this.kernelGsBase = v; return true;
      case MSR_IA32_SYSENTER_CS: this.sysenterCs = v; return true;
      case MSR_IA32_SYSENTER_ESP: this.sysenterEsp = v; return true;
      case MSR_IA32_SYSENTER_EIP: this.sysenterEip = v; return true;
      case MSR_IA32_TSC: this.tscOffset = v - process.hrtime.bigint(); return true;
      case MSR_TSC_AUX: this.tscAux = v; return true;
      default: return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------

  injectException(vector: number, errorCode?: number, address?: bigint): void {
    if (!Number.isInteger(vector) || vector < 0 || vector > 31) {
      throw new RangeError(`injectException: vector must be an exception vector 0..31, got ${vector}`);
    }
    if (errorCode !== undefined && (!Number.isInteger(errorCode) || errorCode < 0 || errorCode > 0xffffffff)) {
      throw new RangeError(`injectException: error code must be a 32-bit unsigned integer, got ${errorCode}`);
    }
    const code = errorCode ?? (pushesErrorCode(vector) ? 0 : -1);
    this.pending = {
      vector,
      errorCode: pushesErrorCode(vector) ? code : -1,
      address: address === undefined ? 0 : linearFromBigInt(address),
    };
    this.pendingCr2 = vector === 14 && address !== undefined ? BigInt.asUintN(64, address) : null;
  }

  /** CR2 for an injected #PF, exact even for a non-canonical address. */
  private pendingCr2: bigint | null = null;

  skipInstruction(): void {
    this.rip += this.interceptedLength;
    this.interceptedLength = 0;
  }

  executeIntercepted(): void {
    const i = this.interceptedInsn;
    if (i === null) throw new Error('executeIntercepted: the core is not stopped at a descriptor-table intercept');
    this.interceptedInsn = null;
    this.executingIntercepted = true;
    try {
      i.exec(this, i);
      this.skipInstruction();
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      this.interceptedLength = 0;
      const code = this.faultErrorCode;
      this.injectException(this.faultVector, code < 0 ? undefined : code, this.faultVector === 14 ? BigInt(this.faultAddress) : undefined);
    } finally {
      this.executingIntercepted = false;
    }
  }

  setHostBreakpoints(breakpoints: { readonly dr: readonly bigint[]; readonly dr7: bigint } | null): void {
    if (breakpoints !== null) {
      if (breakpoints.dr.length !== 4 || breakpoints.dr.some((d) => typeof d !== 'bigint') || typeof breakpoints.dr7 !== 'bigint') {
        throw new TypeError('setHostBreakpoints: dr must be four bigints and dr7 a bigint');
      }
    }
    this.hostBreakpoints = breakpoints === null ? null : {
      dr: breakpoints.dr.map((d) => BigInt.asUintN(64, d)),
      dr7: Number(BigInt.asUintN(32, breakpoints.dr7)),
    };
    armBreakpoints(this);
  }

  getDebugRegs(): { db: bigint[]; dr6: bigint; dr7: bigint } {
    return { db: [...this.dr], dr6: BigInt(this.dr6 >>> 0), dr7: BigInt((this.dr7 | DR7_FIXED_1) >>> 0) };
  }

  translate(gva: bigint, access: AccessKind, cpl?: number): { gpa: number } | { vector: 14; errorCode: number } {
    const level = cpl ?? this.cpl;
    if (!Number.isInteger(level) || level < 0 || level > 3) throw new RangeError(`translate: CPL must be 0..3, got ${cpl}`);
    const kind = access === 'write' ? ACC_WRITE : access === 'fetch' ? ACC_FETCH : ACC_READ;
    if (access !== 'read' && access !== 'write' && access !== 'fetch') {
      throw new TypeError(`translate: access must be 'read', 'write' or 'fetch', got ${String(access)}`);
    }
    const pa = walk(this, linearFromBigInt(gva), kind, level === 3, false, false);
    return pa < 0 ? { vector: 14, errorCode: -pa - 1 } : { gpa: pa };
  }

  // -------------------------------------------------------------------------------------------
  // Mode and event queue (GuestCpu: is64BitMode, clearExceptionQueue)
  // -------------------------------------------------------------------------------------------

  is64BitMode(): boolean {
    return this.seg[SEG_CS]!.l && (this.efer & EFER_LMA) !== 0n;
  }

  clearExceptionQueue(): void {
    this.pending = null;
    this.pendingCr2 = null;
  }

  get queuedException(): GuestCpu['queuedException'] {
    const p = this.pending;
    if (p === null) return null;
    return { vector: p.vector, ...(p.errorCode >= 0 && { errorCode: p.errorCode }), ...(this.pendingCr2 !== null && { cr2: this.pendingCr2 }) };
  }
}

function validateSegment(s: Segment | undefined, name: string): void {
  if (s === null || typeof s !== 'object') throw new TypeError(`setSregs: ${name} must be a segment`);
  if (typeof s.base !== 'bigint') throw new TypeError(`setSregs: ${name}.base must be a bigint`);
  for (const k of ['limit', 'selector', 'type', 'dpl'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 0) throw new TypeError(`setSregs: ${name}.${k} must be a non-negative integer`);
  }
  if (s.limit > 0xffffffff || s.selector > 0xffff || s.type > 15 || s.dpl > 3) {
    throw new RangeError(`setSregs: ${name} has an out-of-range field (limit ≤ 0xffffffff, selector ≤ 0xffff, type ≤ 15, dpl ≤ 3)`);
  }
}
