/**
 * The boot image's guest code, hand-encoded: the IDT stubs, the common exception path that
 * records a fault and resumes at a fix-up address (as a kernel's exception table lets
 * rdmsr_safe() survive a #GP), the "done" gate (int3) that ends a CPL3 operation, and one template
 * per guest operation. Encodings are from the SDM vol. 2 opcode tables; test/vmm/boot.test.ts
 * checks every byte sequence against iced-x86's decoder.
 */
import {
  FAULT_RECORD, FAULT_RECORD_SIZE, KERNEL_TEXT, STUBS, STUB_STRIDE, USER_TEXT,
} from './layout.js';

/** Vectors for which the CPU pushes an error code (SDM vol. 3A table 6-1). */
const VECTORS_WITH_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export function pushesErrorCode(vector: number): boolean {
  return VECTORS_WITH_ERROR_CODE.has(vector);
}

/**
 * `int3` from CPL3 ends a user-mode operation: gate 3 (#BP, DPL3 as on Linux) leads to the
 * done handler. Not a vector of its own (`int 0x81` once): INT n from CPL3 is #UD on a PVM host,
 * which lets only the gates a Linux host opens to user space (#BP, #OF, the syscall vector)
 * through, while `int3` reaches the guest's gate on every x86 host (docs/real-kvm.md). Guest
 * code's own `int3` lands there too; the VMM tells the two apart by the return address in the
 * gate's frame (run/exec.ts) and reports the guest's as #BP.
 */
export const DONE_VECTOR = 3;

/**
 * Each guest operation the VMM can lower, as the instruction that performs it. Inputs come in
 * the registers the instruction reads (ECX for RDMSR, EDX:EAX for WRMSR, RAX for MOV to CR and
 * LMSW, RAX/RBX/RCX/RDX/RSI for hypercalls, EAX/ECX for CPUID); results are left where the
 * instruction puts them.
 */
export const OPERATION_BYTES = {
  rdmsr: [0x0f, 0x32],
  wrmsr: [0x0f, 0x30],
  readCr0: [0x0f, 0x20, 0xc0], // mov rax, cr0
  readCr2: [0x0f, 0x20, 0xd0], // mov rax, cr2
  readCr3: [0x0f, 0x20, 0xd8], // mov rax, cr3
  readCr4: [0x0f, 0x20, 0xe0], // mov rax, cr4
  readCr8: [0x44, 0x0f, 0x20, 0xc0], // mov rax, cr8 (REX.R selects CR8)
  writeCr0: [0x0f, 0x22, 0xc0], // mov cr0, rax
  writeCr2: [0x0f, 0x22, 0xd0], // mov cr2, rax
  writeCr3: [0x0f, 0x22, 0xd8], // mov cr3, rax
  writeCr4: [0x0f, 0x22, 0xe0], // mov cr4, rax
  writeCr8: [0x44, 0x0f, 0x22, 0xc0], // mov cr8, rax
  lmsw: [0x0f, 0x01, 0xf0], // lmsw ax
  clts: [0x0f, 0x06],
  vmcall: [0x0f, 0x01, 0xc1],
  vmmcall: [0x0f, 0x01, 0xd9],
  cpuid: [0x0f, 0xa2],
} as const;
export type OperationName = keyof typeof OPERATION_BYTES;

/** What follows an operation: CPL0 halts (KVM_EXIT_HLT); CPL3 cannot, so it takes the done gate. */
export const KERNEL_EPILOGUE = [0xf4]; // hlt
export const USER_EPILOGUE = [0xcc]; // int3

export interface OperationTemplate {
  /** Address of the operation's instruction. */
  readonly entry: number;
  /** Address of the epilogue right after it: the fix-up target for a fault in the operation. */
  readonly epilogue: number;
}

export interface KernelText {
  /** The path every stub jumps to. */
  readonly commonEntry: number;
  /** Where a recorded fault halts when the record's fix-up is 0. */
  readonly faultHalt: number;
  /** The handler of the done gate: where a CPL3 operation ends, halted at CPL0. */
  readonly doneHalt: number;
  /** A lone IRETQ: the VMM enters CPL3 by pointing RSP at an IRET frame and RIP here. */
  readonly iretq: number;
  readonly kernelOps: Readonly<Record<OperationName, OperationTemplate>>;
  readonly userOps: Readonly<Record<OperationName, OperationTemplate>>;
}

/** A byte sink with labels resolved at the end, enough for the few jumps the stubs need. */
class Code {
  readonly bytes: number[] = [];
  constructor(readonly origin: number) {}
  get here(): number {
    return this.origin + this.bytes.length;
  }
  emit(...b: number[]): void {
    this.bytes.push(...b);
  }
  align(n: number, fill = 0xcc): void {
    while (this.bytes.length % n !== 0) this.bytes.push(fill);
  }
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** `jmp rel32` from `at` (address of the jmp) to `target`. */
function jmpRel32(at: number, target: number): number[] {
  return [0xe9, ...le32(target - (at + 5))];
}

/**
 * One 16-byte stub per vector: normalise the frame to always hold an error code, push the
 * vector, and jump to the common path.
 */
export function buildStubs(commonEntry: number): Uint8Array {
  const out = new Uint8Array(256 * STUB_STRIDE).fill(0xcc);
  for (let v = 0; v < 256; v++) {
    const at = STUBS + v * STUB_STRIDE;
    const b: number[] = [];
    if (!pushesErrorCode(v)) b.push(0x6a, 0x00); // push 0 (stand-in error code)
    // push imm8 sign-extends, so vectors >= 0x80 need the imm32 form.
    if (v < 0x80) b.push(0x6a, v); // push v
    else b.push(0x68, ...le32(v)); // push v
    b.push(...jmpRel32(at + b.length, commonEntry));
    out.set(b, v * STUB_STRIDE);
  }
  return out;
}

/** Offset of the fault record from RSP inside the common path, after its `push rax`. */
const R = FAULT_RECORD_SIZE;

/**
 * The kernel text page. The common path runs on IST1, so on entry (after its own push rax) the
 * stack holds, from RSP: saved RAX, vector, error code, RIP, CS, RFLAGS, RSP, SS — and the
 * fault record starts right above SS, at RSP + 64 (IST1 points at the record; the CPU aligns it
 * to 16 and pushes 5 qwords, the stub 2 more, the common path 1 more).
 */
export function buildKernelText(): { bytes: Uint8Array; text: KernelText } {
  const c = new Code(KERNEL_TEXT);
  const disp = (field: number) => R + field;

  const commonEntry = c.here;
  c.emit(0x50); // push rax
  c.emit(0x48, 0x8b, 0x44, 0x24, 0x08); // mov rax, [rsp+8]        vector
  c.emit(0x48, 0x89, 0x44, 0x24, disp(FAULT_RECORD.vector)); // mov [rsp+72], rax
  c.emit(0x48, 0x8b, 0x44, 0x24, 0x10); // mov rax, [rsp+16]       error code
  c.emit(0x48, 0x89, 0x44, 0x24, disp(FAULT_RECORD.errorCode)); // mov [rsp+80], rax
  c.emit(0x48, 0x8b, 0x44, 0x24, 0x18); // mov rax, [rsp+24]       interrupted RIP
  c.emit(0x48, 0x89, 0x44, 0x24, disp(FAULT_RECORD.rip)); // mov [rsp+96], rax
  c.emit(0x48, 0xff, 0x44, 0x24, disp(FAULT_RECORD.count)); // inc qword [rsp+64]
  c.emit(0x48, 0x8b, 0x44, 0x24, disp(FAULT_RECORD.fixup)); // mov rax, [rsp+88]   fix-up
  c.emit(0x48, 0x85, 0xc0); // test rax, rax
  const jzAt = c.bytes.length;
  c.emit(0x74, 0x00); // jz faultHalt (patched below)
  c.emit(0x48, 0x89, 0x44, 0x24, 0x18); // mov [rsp+24], rax      resume at the fix-up
  c.emit(0x58); // pop rax
  c.emit(0x48, 0x83, 0xc4, 0x10); // add rsp, 16                 drop vector and error code
  c.emit(0x48, 0xcf); // iretq
  const faultHalt = c.here;
  c.bytes[jzAt + 1] = faultHalt - (KERNEL_TEXT + jzAt + 2);
  c.emit(0xf4); // hlt
  c.emit(0xeb, 0xfd); // jmp faultHalt

  c.align(16);
  const doneHalt = c.here;
  c.emit(0xf4); // hlt
  c.emit(0xeb, 0xfd); // jmp doneHalt

  c.align(16);
  const iretq = c.here;
  c.emit(0x48, 0xcf); // iretq

  const kernelOps = emitTemplates(c, KERNEL_EPILOGUE);
  if (c.bytes.length > 0x1000) throw new Error('kernel text overflows its page');
  return {
    bytes: Uint8Array.from(c.bytes),
    text: { commonEntry, faultHalt, doneHalt, iretq, kernelOps, userOps: userTemplates().text },
  };
}

function emitTemplates(c: Code, epilogue: readonly number[]): Record<OperationName, OperationTemplate> {
  const ops = {} as Record<OperationName, OperationTemplate>;
  for (const [name, insn] of Object.entries(OPERATION_BYTES) as [OperationName, readonly number[]][]) {
    c.align(16);
    const entry = c.here;
    c.emit(...insn);
    const ep = c.here;
    c.emit(...epilogue);
    ops[name] = { entry, epilogue: ep };
  }
  return ops;
}

/** The same operations for CPL3, in the user region, each ending in the done gate. */
export function userTemplates(): { bytes: Uint8Array; text: Record<OperationName, OperationTemplate> } {
  const c = new Code(USER_TEXT);
  const text = emitTemplates(c, USER_EPILOGUE);
  return { bytes: Uint8Array.from(c.bytes), text };
}
