/**
 * A real vCPU file descriptor, in the manner of rust-vmm's kvm-ioctls `VcpuFd`: a thin typed
 * layer over KVM_RUN and the vCPU ioctls, the KvmVcpu of host/kvm/api/vcpu.ts.
 *
 * KVM_RUN is called synchronously on the thread that created the vCPU (one thread per vCPU).
 * Real KVM cannot count instructions, so run() refuses RunOptions.budget (the model's, EINVAL)
 * and always has a deadline (deadline.ts; 10–11 s when none is given); a run that reaches it
 * returns KVM_EXIT_INTR with `timed_out` set. Any other EINTR (a stray signal, e.g.
 * SIGCHLD when a child process ends) is re-entered, unless immediate_exit was set: then it is
 * KVM_EXIT_INTR with `timed_out` false. On every EINTR run() stores KVM_EXIT_INTR into
 * kvm_run.exit_reason itself, because the kernel leaves it stale when immediate_exit is set
 * (docs/real-kvm.md §3), where the model reports KVM_EXIT_INTR.
 */
import { Errno } from '../../../protocol/abi.js';
import type { Regs, Sregs } from '../api/regs.js';
import { enableCapArgs } from '../capabilities.js';
import { KvmError } from '../api/errors.js';
import type { KvmRun, VcpuExit } from '../api/exits.js';
import type { ExceptionEvent, GuestDebug, KvmVcpu, MsrEntry, RunOptions } from '../api/vcpu.js';
import { checkGuestDebug } from '../guest-debug.js';
import { checkExceptionEvent } from '../vcpu-events.js';
import { isU32 } from '../u64.js';
import { defaultDeadline, ThreadTimer } from './deadline.js';
import { errnoError } from './errno.js';
import type { KvmFd } from './fd.js';
import { type HekiExits, RealKvmRun } from './kvm-run.js';
import { Mapping } from './mapping.js';
import type { GuestCpuid, GuestCpuidOptions } from '../api/cpuid.js';
import { decodeCpuid, encodeCpuid, type CpuidEntry2 } from './cpuid.js';
import { featuresOf, withFeatures } from './cpuid-features.js';
import { decodeRegs, decodeSregs, encodeRegs, encodeSregs } from './regs-codec.js';
import {
  ENABLE_CAP, KVM_ENABLE_CAP, KVM_GET_VCPU_EVENTS, KVM_SET_GUEST_DEBUG, KVM_SET_VCPU_EVENTS, KVM_VCPUEVENT_VALID_PAYLOAD, KVM_VCPUEVENT_VALID_TRIPLE_FAULT, SIZEOF_VCPU_EVENTS, VCPU_EVENTS, SIZEOF_GUEST_DEBUG, KVM_GET_CPUID2, KVM_GET_MSRS, KVM_GET_REGS, KVM_GET_SREGS, KVM_MAX_CPUID_ENTRIES, KVM_RUN,
  KVM_SET_CPUID2, KVM_SET_MSRS, KVM_SET_REGS, KVM_SET_SIGNAL_MASK, KVM_SET_SREGS, MSR_ENTRY, SIZEOF_ENABLE_CAP,
  SIZEOF_MSR_ENTRY, SIZEOF_MSRS_HEADER, SIZEOF_REGS, SIZEOF_SREGS,
} from './uapi.js';

/** MAX_IO_MSRS (arch/x86/kvm/x86.c): KVM_GET/SET_MSRS take fewer entries (E2BIG otherwise). */
const MAX_IO_MSRS = 256;

/** User-space counters of a real vCPU (the kernel's own are in debugfs). */
export interface RealVcpuStat {
  /** KVM_RUN returned EINTR (a signal, the deadline or immediate_exit), re-entered or not. */
  signal_exits: number;
  /** run() calls that ended at their deadline. */
  timeouts: number;
}

export class VcpuFd implements KvmVcpu {
  readonly #stat: RealVcpuStat = { signal_exits: 0, timeouts: 0 };
  readonly #fd: KvmFd;
  readonly #kvmRun: RealKvmRun;
  readonly #runMapping: Mapping;
  readonly #timer: ThreadTimer;
  readonly #regs = new DataView(new ArrayBuffer(SIZEOF_REGS));
  readonly #sregs = new DataView(new ArrayBuffer(SIZEOF_SREGS));

  /** @internal Made by VmFd.createVcpu(). */
  constructor(
    readonly id: number,
    fd: KvmFd,
    mmapSize: number,
    heki: HekiExits,
    /** KVM_GET_SUPPORTED_CPUID, where setCpuid() starts on a vCPU that has no CPUID yet. */
    private readonly supportedCpuid: () => readonly CpuidEntry2[],
  ) {
    this.#fd = fd;
    try {
      this.#timer = ThreadTimer.forThisThread(fd.libc);
      fd.ioctlPointer('KVM_SET_SIGNAL_MASK', KVM_SET_SIGNAL_MASK, this.#timer.vcpuSignalMask());
      this.#runMapping = Mapping.ofFile(fd.libc, fd.number('mmap(kvm_run)'), mmapSize, 'mmap(kvm_run)');
    } catch (e) {
      fd.close();
      throw e;
    }
    this.#kvmRun = new RealKvmRun(this.#runMapping, fd, heki);
  }

  /** kvm_run, as run() returns it and user space edits it. */
  get kvmRun(): KvmRun {
    this.#fd.check('kvm_run');
    return this.#kvmRun;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  /** A snapshot of the counters. */
  get stat(): Readonly<RealVcpuStat> {
    return { ...this.#stat };
  }

  /** KVM_RUN, re-entered after stray signals, ended by the deadline (see above). */
  run(options?: RunOptions): VcpuExit {
    const fd = this.#fd.number('KVM_RUN');
    if (options?.budget !== undefined) throw new KvmError('EINVAL', 'KVM_RUN', 'an instruction budget is the model\'s (a kernel cannot count guest instructions): give a deadline');
    const deadline = options?.deadline ?? defaultDeadline();
    if (typeof deadline !== 'bigint') throw new KvmError('EINVAL', 'KVM_RUN', `deadline must be a bigint (ns, process.hrtime.bigint()), got ${String(deadline)}`);
    const libc = this.#fd.libc;
    const run = this.#kvmRun;
    this.#timer.arm(deadline);
    run.timed_out = false;
    for (;;) {
      if (libc.ioctlValue(fd, KVM_RUN, 0) >= 0) return run.asExit();
      const errno = libc.errno();
      if (errno !== Errno.EINTR) throw errnoError(errno, 'KVM_RUN', `on vCPU ${this.id}`);
      this.#stat.signal_exits++;
      if (this.#timer.interrupted(deadline)) {
        this.#stat.timeouts++;
        run.setIntr(true);
        return run.asExit();
      }
      if (run.immediate_exit) {
        run.setIntr(false);
        return run.asExit();
      }
    }
  }

  /** KVM_GET_REGS */
  getRegs(): Regs {
    this.#fd.ioctlPointer('KVM_GET_REGS', KVM_GET_REGS, new Uint8Array(this.#regs.buffer));
    return decodeRegs(this.#regs, 0);
  }

  /** KVM_SET_REGS */
  setRegs(regs: Regs): void {
    this.#fd.check('KVM_SET_REGS');
    encodeRegs(this.#regs, 0, regs, 'KVM_SET_REGS');
    this.#fd.ioctlPointer('KVM_SET_REGS', KVM_SET_REGS, new Uint8Array(this.#regs.buffer));
  }

  /** KVM_GET_SREGS */
  getSregs(): Sregs {
    this.#fd.ioctlPointer('KVM_GET_SREGS', KVM_GET_SREGS, new Uint8Array(this.#sregs.buffer));
    return decodeSregs(this.#sregs, 0);
  }

  /** KVM_SET_SREGS (the kernel checks the values: kvm_is_valid_sregs()). */
  setSregs(sregs: Sregs): void {
    this.#fd.check('KVM_SET_SREGS');
    encodeSregs(this.#sregs, 0, sregs, 'KVM_SET_SREGS');
    this.#fd.ioctlPointer('KVM_SET_SREGS', KVM_SET_SREGS, new Uint8Array(this.#sregs.buffer));
  }

  /**
   * KVM_GET_MSRS: host-initiated reads; the kernel stops at the first MSR it cannot read and
   * answers how many it read, which are the entries returned.
   */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const call = 'KVM_GET_MSRS';
    const buf = msrsBuffer(call, indices.length, indices, (i) => ({ index: indices[i]!, data: 0n }));
    const n = this.#fd.ioctlPointer(call, KVM_GET_MSRS, new Uint8Array(buf.buffer));
    return Array.from({ length: n }, (_, i) => ({
      index: buf.getUint32(SIZEOF_MSRS_HEADER + i * SIZEOF_MSR_ENTRY + MSR_ENTRY.index, true),
      data: buf.getBigUint64(SIZEOF_MSRS_HEADER + i * SIZEOF_MSR_ENTRY + MSR_ENTRY.data, true),
    }));
  }

  /** KVM_SET_MSRS: host-initiated writes; answers how many were written before the first failure. */
  setMsrs(entries: readonly MsrEntry[]): number {
    const call = 'KVM_SET_MSRS';
    const buf = msrsBuffer(call, entries.length, entries, (i) => entries[i]!);
    return this.#fd.ioctlPointer(call, KVM_SET_MSRS, new Uint8Array(buf.buffer));
  }

  /** KVM_GET_CPUID2: the vCPU's CPUID entries as last set. */
  getCpuid2(): CpuidEntry2[] {
    const buf = encodeCpuid([], KVM_MAX_CPUID_ENTRIES, 'KVM_GET_CPUID2');
    this.#fd.ioctlPointer('KVM_GET_CPUID2', KVM_GET_CPUID2, new Uint8Array(buf.buffer));
    return decodeCpuid(buf);
  }

  /**
   * KVM_SET_CPUID2: the entries as given (KVM_GET_SUPPORTED_CPUID is where to start from). On
   * this kernel, as in the model, only an identical set is accepted after the first KVM_RUN.
   */
  setCpuid2(entries: readonly CpuidEntry2[]): void {
    this.#fd.check('KVM_SET_CPUID2');
    const buf = encodeCpuid(entries, entries.length, 'KVM_SET_CPUID2');
    this.#fd.ioctlPointer('KVM_SET_CPUID2', KVM_SET_CPUID2, new Uint8Array(buf.buffer));
  }

  /** The model's view of the CPUID (GuestCpuid) read from KVM_GET_CPUID2. */
  getCpuid(): GuestCpuid {
    return featuresOf(this.getCpuid2());
  }

  /**
   * KVM_SET_CPUID2 by features, as the model's setCpuid(): the features named are set or
   * cleared in the vCPU's CPUID (the kernel's supported CPUID on a vCPU that has none yet);
   * every other bit stays. What the guest sees is then the kernel's doing (cpuid-features.ts).
   */
  setCpuid(options: GuestCpuidOptions): void {
    const current = this.getCpuid2();
    this.setCpuid2(withFeatures(current.length > 0 ? current : this.supportedCpuid(), options, 'KVM_SET_CPUID2'));
  }

  /** KVM_SET_GUEST_DEBUG: struct kvm_guest_debug, control then debugreg[8] at offset 8. */
  setGuestDebug(debug: GuestDebug): void {
    this.#fd.check('KVM_SET_GUEST_DEBUG');
    const { control, debugreg } = checkGuestDebug(debug);
    const buf = new DataView(new ArrayBuffer(SIZEOF_GUEST_DEBUG));
    buf.setUint32(0, control, true);
    debugreg.forEach((d, i) => buf.setBigUint64(8 + 8 * i, d, true));
    this.#fd.ioctlPointer('KVM_SET_GUEST_DEBUG', KVM_SET_GUEST_DEBUG, new Uint8Array(buf.buffer));
  }

  /**
   * KVM_SET_VCPU_EVENTS, exception part: the vCPU's events read with KVM_GET_VCPU_EVENTS, the
   * exception replaced, written back — the rest (interrupt, NMI, SMI state) as KVM gave it. pinbox
   * does not enable KVM_CAP_EXCEPTION_PAYLOAD, so the exception goes in as injected (KVM delivers it
   * at the next entry) and a #PF's CR2 is loaded first with KVM_SET_SREGS, as a VMM without payloads
   * does. Checked as the model checks it, before any ioctl.
   */
  injectException(event: ExceptionEvent): void {
    const { vector, errorCode, payload } = checkExceptionEvent(event);
    const { buf, view } = this.getVcpuEvents();
    if (vector === 14 && payload !== undefined) this.setSregs({ ...this.getSregs(), cr2: payload });
    buf[VCPU_EVENTS.exception_injected] = 1;
    buf[VCPU_EVENTS.exception_nr] = vector;
    buf[VCPU_EVENTS.exception_has_error_code] = errorCode === undefined ? 0 : 1;
    buf[VCPU_EVENTS.exception_pending] = 0;
    view.setUint32(VCPU_EVENTS.exception_error_code, errorCode ?? 0, true);
    buf[VCPU_EVENTS.exception_has_payload] = 0;
    view.setBigUint64(VCPU_EVENTS.exception_payload, 0n, true);
    view.setUint32(VCPU_EVENTS.flags, view.getUint32(VCPU_EVENTS.flags, true) & ~KVM_VCPUEVENT_VALID_PAYLOAD, true);
    this.#fd.ioctlPointer('KVM_SET_VCPU_EVENTS', KVM_SET_VCPU_EVENTS, buf);
  }

  /** KVM_GET_VCPU_EVENTS, exception part: the exception injected or pending, if any. */
  queuedException(): ExceptionEvent | undefined {
    const { buf, view } = this.getVcpuEvents();
    if (buf[VCPU_EVENTS.exception_injected] === 0 && buf[VCPU_EVENTS.exception_pending] === 0) return undefined;
    const hasCode = buf[VCPU_EVENTS.exception_has_error_code] !== 0;
    return { vector: buf[VCPU_EVENTS.exception_nr]!, ...(hasCode && { errorCode: view.getUint32(VCPU_EVENTS.exception_error_code, true) }) };
  }

  /**
   * KVM_SET_VCPU_EVENTS with KVM_VCPUEVENT_VALID_TRIPLE_FAULT: the events read back, triple_fault.pending
   * set. The kernel refuses it (EINVAL) unless the VM enabled KVM_CAP_X86_TRIPLE_FAULT_EVENT.
   */
  injectTripleFault(): void {
    const { buf, view } = this.getVcpuEvents();
    buf[VCPU_EVENTS.triple_fault_pending] = 1;
    view.setUint32(VCPU_EVENTS.flags, view.getUint32(VCPU_EVENTS.flags, true) | KVM_VCPUEVENT_VALID_TRIPLE_FAULT, true);
    this.#fd.ioctlPointer('KVM_SET_VCPU_EVENTS', KVM_SET_VCPU_EVENTS, buf);
  }
  /** KVM_GET_VCPU_EVENTS: struct kvm_vcpu_events as the kernel fills it, to read or to change and write back. */
  private getVcpuEvents(): { buf: Uint8Array; view: DataView } {
    const buf = new Uint8Array(SIZEOF_VCPU_EVENTS);
    this.#fd.ioctlPointer('KVM_GET_VCPU_EVENTS', KVM_GET_VCPU_EVENTS, buf);
    return { buf, view: new DataView(buf.buffer) };
  }


  /** KVM_ENABLE_CAP on the vCPU. */
  enableCap(cap: number, args: readonly (bigint | number)[] = [], flags = 0): void {
    this.#fd.check('KVM_ENABLE_CAP');
    this.#fd.ioctlPointer(`KVM_ENABLE_CAP(${cap})`, KVM_ENABLE_CAP, enableCapBuffer(`KVM_ENABLE_CAP(${cap})`, cap, args, flags));
  }

  /** Closes the vCPU: its kvm_run is released (views read zeros), every later call is EBADF. */
  close(): void {
    if (this.#fd.closed) return;
    this.#fd.close();
    this.#runMapping.release();
  }
}

/**
 * `struct kvm_msrs` with `count` entries. A count of MAX_IO_MSRS or more is passed with the
 * header alone: the kernel answers E2BIG from the header before it reads any entry.
 */
function msrsBuffer(call: string, count: number, list: readonly unknown[], entry: (i: number) => MsrEntry): DataView {
  if (!Array.isArray(list)) throw new KvmError('EINVAL', call, 'expects an array');
  const stored = count < MAX_IO_MSRS ? count : 0;
  const buf = new DataView(new ArrayBuffer(SIZEOF_MSRS_HEADER + stored * SIZEOF_MSR_ENTRY));
  buf.setUint32(0, count, true);
  for (let i = 0; i < stored; i++) {
    const e = entry(i);
    if (typeof e !== 'object' || e === null || !isU32(e.index)) throw new KvmError('EINVAL', call, `entry ${i}: index must be a u32`);
    if (typeof e.data !== 'bigint' || e.data < 0n || e.data >= 1n << 64n) throw new KvmError('EINVAL', call, `entry ${i}: data must be a u64 bigint`);
    buf.setUint32(SIZEOF_MSRS_HEADER + i * SIZEOF_MSR_ENTRY + MSR_ENTRY.index, e.index, true);
    buf.setBigUint64(SIZEOF_MSRS_HEADER + i * SIZEOF_MSR_ENTRY + MSR_ENTRY.data, e.data, true);
  }
  return buf;
}

/** `struct kvm_enable_cap`, with the model's argument rules (flags must be 0 is the kernel's to say). */
export function enableCapBuffer(call: string, cap: number, args: readonly (bigint | number)[], flags: number): Uint8Array {
  if (!isU32(cap)) throw new KvmError('EINVAL', call, `cap must be a u32, got ${String(cap)}`);
  if (!isU32(flags)) throw new KvmError('EINVAL', call, `flags must be a u32, got ${String(flags)}`);
  // enableCapArgs() also refuses flags ≠ 0; real KVM does the same for every cap pinbox uses,
  // but that is the kernel's answer to give: check the args with flags 0.
  const a = enableCapArgs(call, args, 0);
  const v = new DataView(new ArrayBuffer(SIZEOF_ENABLE_CAP));
  v.setUint32(ENABLE_CAP.cap, cap, true);
  v.setUint32(ENABLE_CAP.flags, flags, true);
  a.forEach((x, i) => v.setBigUint64(ENABLE_CAP.args + 8 * i, x, true));
  return new Uint8Array(v.buffer);
}
