/**
 * One hand-written request and result for every op of PROTOCOL.md §3, §5 and §6, used by the
 * round-trip tests (pure codec, memory pair, each real transport). They use every optional
 * field somewhere and the 64-bit edges: 0, 2^32, 2^63, 2^64-1 and -KVM_EINVAL as a u64.
 */
import type { Op } from '../../protocol/messages/index.js';

export const U64_MAX = (1n << 64n) - 1n;
export const TWO_63 = 1n << 63n;
export const MINUS_KVM_EINVAL_U64 = (1n << 64n) - 22n;

const regs = {
  rax: 0n, rbx: 1n, rcx: 0xc0000080n, rdx: 0xffffffffn, rsi: 1n << 32n, rdi: TWO_63, rsp: 0x8000n, rbp: U64_MAX,
  r8: 8n, r9: 9n, r10: 10n, r11: 11n, r12: 12n, r13: 13n, r14: 14n, r15: 15n, rip: 0x1000n, rflags: 2n,
};
const segment = {
  base: 0n, limit: 0xffffffff, selector: 0x10, type: 11, present: true, dpl: 0,
  db: false, s: true, l: true, g: true, avl: false, unusable: false,
};
const sregs = {
  cs: segment, ds: { ...segment, type: 3, l: false }, es: segment, fs: segment, gs: segment, ss: segment,
  tr: { ...segment, type: 11, s: false, selector: 0x28 }, ldt: { ...segment, unusable: true },
  gdt: { base: 0x2000n, limit: 0x37 }, idt: { base: 0x3000n, limit: 0xfff },
  cr0: 0x80050033n, cr2: 0n, cr3: 0x4000n, cr4: 0x3506f0n, cr8: 0n, efer: 0xd01n, apicBase: 0xfee00900n,
};
const event = {
  seq: 0n, time: U64_MAX, name: 'kvm_msr', vm: 'default', vcpu: 0, rip: TWO_63,
  fields: { index: 0x10n, write: false, value: -1n, huge: U64_MAX, note: 'filtered' },
};

export interface Sample {
  params: Record<string, unknown>;
  result: Record<string, unknown>;
}

export const SAMPLES: Record<Op, Sample> = {
  hello: {
    params: { version: 1, role: 'guest', vm: 'vm-1.a_b', vcpu: 1, client: 'sample' },
    result: { version: 1, role: 'guest', server: 'pinbox', vm: 'vm-1.a_b', vcpu: 1, vcpus: 2, profile: 'v3' },
  },
  hypercall: {
    params: { nr: 13n, args: [4n, 0x100b10800n, 0n, U64_MAX], insn: 'vmmcall', cpl: 0 },
    result: { ret: MINUS_KVM_EINVAL_U64, exits: [] },
  },
  rdmsr: {
    params: { index: 0xffffffff, cpl: 3 },
    result: {
      value: U64_MAX,
      exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'UNKNOWN', index: 0xffffffff, data: U64_MAX, error: 0, exitData: 0n } }],
    },
  },
  wrmsr: {
    params: { index: 0x10, value: TWO_63 },
    result: {
      fault: { vector: 13, errorCode: 0 },
      exits: [{ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index: 0x10, data: TWO_63, error: 1 } }],
      exitsDropped: 7,
    },
  },
  readCr: { params: { cr: 8 }, result: { value: 0n, exits: [] } },
  writeCr: {
    params: { cr: 4, value: 0x3506f0n },
    result: { fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4', value: 0x3506f0n } }] },
  },
  lmsw: { params: { value: 0xffff }, result: { exits: [] } },
  clts: { params: { cpl: 3 }, result: { fault: { vector: 13, errorCode: 0 }, exits: [] } },
  cpuid: {
    params: { leaf: 0x40000000, subleaf: 0 },
    result: { eax: 0x40000001, ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x4d, exits: [] },
  },
  exec: {
    params: { code: Uint8Array.from([0x0f, 0x32, 0xf4]), regs: { rcx: 0x10n, r15: U64_MAX }, budget: 1000, cpl: 0 },
    result: {
      stop: 'hlt', regs,
      exits: [{ reason: 'KVM_EXIT_IO', io: { port: 0x3f8, size: 1, direction: 'out', value: 0x41 } }],
    },
  },
  batch: {
    params: { ops: [{ op: 'rdmsr', index: 0x10 }, { op: 'wrmsr', index: 0x10, value: 0n, cpl: 3 }, { op: 'clts' }] },
    result: {
      results: [
        { ok: true, result: { value: 5n, exits: [] } },
        { ok: false, error: { code: 'kvm_error', message: 'refused', errno: 'EINVAL' } },
        { ok: true, result: { exits: [] } },
      ],
    },
  },
  checkExtension: { params: { cap: 189, vm: 'default' }, result: { value: -1 } },
  enableCap: { params: { vm: 'default', cap: 188, args: [7n], flags: 0 }, result: {} },
  setMsrFilter: {
    params: {
      vm: 'default', flags: 1,
      ranges: [
        { flags: 1, base: 0, nmsrs: 0x3000, bitmap: new Uint8Array(0x600).fill(0xa5) },
        { flags: 2, base: 0xc0000000, nmsrs: 0, bitmap: new Uint8Array(0) },
      ],
    },
    result: {},
  },
  getMsrs: {
    params: { vm: 'default', vcpu: 0, indices: [0x10, 0xc0000080] },
    result: { nmsrs: 1, entries: [{ index: 0x10, value: U64_MAX }] },
  },
  setMsrs: { params: { vm: 'default', vcpu: 3, entries: [{ index: 0x10, value: 0n }] }, result: { nmsrs: 1 } },
  getRegs: { params: { vm: 'default', vcpu: 0 }, result: { regs } },
  setRegs: { params: { vm: 'default', vcpu: 0, regs: { rip: 0x2000n, rflags: 0x202n } }, result: {} },
  getSregs: { params: { vm: 'default', vcpu: 0 }, result: { sregs } },
  setSregs: {
    params: { vm: 'default', vcpu: 0, sregs: { cr4: 0x3506f0n, cs: { selector: 8 }, gdt: { limit: 0x17 } } },
    result: {},
  },
  initVcpu: { params: { vm: 'default', vcpu: 1 }, result: {} },
  subscribe: { params: { vm: 'default', events: ['heki_denial', 'kvm_msr'], completions: true }, result: { sub: 0xffffffff } },
  unsubscribe: { params: { sub: 3 }, result: {} },
  events: {
    params: { vm: 'default', since: TWO_63, limit: 10000 },
    result: { events: [event, { seq: 1n, time: 2n, name: 'vm_reset', vm: 'default', fields: {} }], next: 2n },
  },
  resetVm: { params: { vm: 'default' }, result: {} },
  pauseVm: { params: { vm: 'default' }, result: {} },
  resumeVm: { params: { vm: 'default' }, result: {} },
  snapshot: { params: { vm: 'default' }, result: { snapshot: Uint8Array.from([1, 2, 3, 0, 255]) } },
  restore: { params: { vm: 'default', snapshot: Uint8Array.from([1, 2, 3, 0, 255]) }, result: {} },
  stats: {
    params: {},
    result: { vms: 1, connections: 2, uptimeMs: 12345n, requests: U64_MAX, extra: { tlbHits: 99n, mode: 'test', busy: true } },
  },
  setMsrExitReply: { params: { vm: 'default', msr: { error: 1, data: 0n } }, result: {} },
  createVm: { params: { vm: 'scenario-1', policy: '{"vcpus": 2, "userSpaceMsr": []}', replace: true }, result: { vcpus: 2, profile: 'v3' } },
  destroyVm: { params: { vm: 'scenario-1' }, result: {} },
  holdExit: { params: { vm: 'default', vcpu: 1 }, result: {} },
  releaseExit: { params: { vm: 'default', vcpu: 1 }, result: { held: true } },
  setCrFilter: { params: { vm: 'default', flags: 0, cr0Mask: 0x10000n, cr4Mask: 0x300000n, xcr0Mask: 0n }, result: {} },
  setCrExitReply: { params: { vm: 'default', reply: { action: 'value', value: U64_MAX, limit: 0xffff } }, result: {} },
  setMemoryAttributes: { params: { vm: 'default', address: 0x100000n, size: 0x4000n, attributes: 0x2000000n }, result: {} },
  getMemoryAttributes: {
    params: { vm: 'default', address: 0x100000n },
    result: {
      attributes: [{ address: 0x100000n, size: 0x4000n, attributes: 0x2000000n }],
      permissions: [
        { address: 0n, size: 0x100000n, read: true, write: true, exec: true, userExec: true },
        { address: 0x100000n, size: 0x4000n, read: true, write: false, exec: true, userExec: true },
      ],
      mbec: false,
      delivery: 'exit',
      next: 0x104000n,
    },
  },
  setRegisterIntercepts: {
    params: { vcpu: 1, control: 0x1_8003n, cr0Mask: 0x10000n, cr4Mask: 0x300000n, miscEnableMask: U64_MAX },
    result: {},
  },
  getRegisterIntercepts: {
    params: { vcpu: 0 },
    result: { control: 0x10003n, cr0Mask: U64_MAX, cr4Mask: 0x100000n, miscEnableMask: U64_MAX },
  },
  watchIntercepts: { params: {}, result: { sub: 1 } },
  answerIntercept: { params: { seq: TWO_63, action: 'deny', value: 0n, limit: 0 }, result: {} },
  setInterceptReply: { params: { reply: null }, result: {} },
};

/** A sample event for pushes. */
export const SAMPLE_EVENT = event;
