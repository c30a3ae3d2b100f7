/**
 * Where an operation starts, at CPL0 or CPL3. CPL0 code starts on the vCPU's kernel stack. The
 * boot image enters CPL3 the way a kernel returns to user mode: an IRET frame [RIP, CS, RFLAGS,
 * RSP, SS] on the kernel stack, RSP pointing at it, RIP at the boot text's lone IRETQ
 * (host/vmm/boot/layout.ts, stubs.ts). The frame's selectors are the GDT's user ones (Linux's
 * 0x33 / 0x2b).
 */
import type { BootLayout } from '../boot/index.js';
import { kernelStackTop, SELECTORS, userStackTop } from '../boot/layout.js';
import { PAGE_MASK, PAGE_SHIFT, type GuestMemory } from '../../kvm/api/guest-memory.js';

/** RFLAGS a CPL3 operation starts with: only the reserved bit 1 (IF clear: nothing interrupts). */
export const USER_RFLAGS = 0x2n;
const IRET_FRAME_BYTES = 5 * 8;

export interface Entry {
  readonly rip: bigint;
  readonly rsp: bigint;
}

export class PrivilegeEntry {
  private readonly kernelRsp: bigint;
  private readonly frameAddress: number;
  private readonly frameView: DataView;
  private readonly frameOffset: number;
  private readonly frame: number;
  private readonly iretq: bigint;

  constructor(private readonly memory: GuestMemory, layout: BootLayout, private readonly vcpu: number) {
    const top = kernelStackTop(vcpu);
    this.kernelRsp = BigInt(top);
    this.frameAddress = top - IRET_FRAME_BYTES;
    this.frame = this.frameAddress >>> PAGE_SHIFT;
    this.frameOffset = this.frameAddress & PAGE_MASK;
    this.frameView = memory.frameView(this.frame);
    this.iretq = BigInt(layout.text.iretq);
  }

  /** Starting `rip` at CPL0, on the kernel stack (or on `rsp` if given). */
  kernel(rip: number | bigint, rsp?: bigint): Entry {
    return { rip: BigInt(rip), rsp: rsp ?? this.kernelRsp };
  }

  /** Starting `rip` at CPL3 on the vCPU's user stack (or on `rsp` if given), through IRETQ. */
  user(rip: number | bigint, rsp?: bigint): Entry {
    const v = this.frameView;
    const o = this.frameOffset;
    v.setBigUint64(o, BigInt(rip), true);
    v.setBigUint64(o + 8, BigInt(SELECTORS.userCs), true);
    v.setBigUint64(o + 16, USER_RFLAGS, true);
    v.setBigUint64(o + 24, rsp ?? BigInt(userStackTop(this.vcpu)), true);
    v.setBigUint64(o + 32, BigInt(SELECTORS.userDs), true);
    this.memory.noteWrite(this.frame);
    return { rip: this.iretq, rsp: BigInt(this.frameAddress) };
  }
}
