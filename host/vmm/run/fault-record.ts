/**
 * The vCPU's fault record (host/vmm/boot/layout.ts FAULT_RECORD): the IDT stubs count every
 * exception, note its vector, error code and RIP, and resume at the record's fix-up address.
 * The VMM arms the record before each operation — count 0, fix-up at the operation's epilogue —
 * and reads it when the operation halts, as a kernel's exception table tells `rdmsr_safe()`
 * that the RDMSR faulted. Accessed through a DataView of its page: user space maps guest memory
 * and pays no BigInt for a 32-bit address.
 */
import { FAULT_RECORD, faultRecordAddress } from '../boot/layout.js';
import { PAGE_MASK, PAGE_SHIFT, type GuestMemory } from '../../kvm/api/guest-memory.js';

export class FaultRecord {
  private readonly view: DataView;
  private readonly offset: number;
  private readonly frame: number;

  constructor(private readonly memory: GuestMemory, vcpu: number) {
    const address = faultRecordAddress(vcpu);
    this.frame = address >>> PAGE_SHIFT;
    this.offset = address & PAGE_MASK;
    this.view = memory.frameView(this.frame);
  }

  /** Count 0 and the fix-up where a fault resumes (0: halt in the stub, keeping the frame). */
  arm(fixup: number): void {
    const v = this.view;
    const o = this.offset;
    v.setUint32(o + FAULT_RECORD.count, 0, true);
    v.setUint32(o + FAULT_RECORD.count + 4, 0, true);
    v.setUint32(o + FAULT_RECORD.fixup, fixup >>> 0, true);
    v.setUint32(o + FAULT_RECORD.fixup + 4, Math.floor(fixup / 2 ** 32), true);
    this.memory.noteWrite(this.frame);
  }

  /** Exceptions recorded since arm() (a guest that counts past 2^32 has bigger problems). */
  get count(): number {
    return this.view.getUint32(this.offset + FAULT_RECORD.count, true);
  }

  get vector(): number {
    return this.view.getUint32(this.offset + FAULT_RECORD.vector, true) & 0xff;
  }

  get errorCode(): number {
    return this.view.getUint32(this.offset + FAULT_RECORD.errorCode, true);
  }

  /** RIP of the interrupted context: the faulting instruction for a fault. */
  get rip(): bigint {
    return this.view.getBigUint64(this.offset + FAULT_RECORD.rip, true);
  }
}
