/**
 * Guest instructions per second on the x86 core (issue 3, item 9):
 *   x86.alu      a register ALU loop (ADD, XOR, LEA, SUB, AND, DEC, JNZ)
 *   x86.memory   loads and stores through 4-level paging, walking a 64 KiB buffer
 *   x86.callret  nested CALL/RET
 * each measured `runs` times (median reported) with block translation on; the `.interpreter`
 * figures are the same loops on the reference interpreter alone, for comparison in one run; the
 * `.protected` figures are alu and memory with second-stage protections installed as a locked
 * kernel has them (issue 15: text read+execute, tables and data read+write and not executable,
 * read-only data read-only): the TLB folds them in, so they should cost nothing once it is warm.
 */
import { Cpu, PhysicalMemory, S2_EXEC, S2_READ, S2_WRITE } from '../../host/index.js';
import { bootVcpu, buildBootImage, layout } from '../../host/vmm/boot/index.js';
import { report, sample } from './report.js';

const LOOPS: Record<string, string> = {
  // mov ecx, 0x7fffffff; mov ebx, 3
  // 1: add rax, rbx; xor rbx, rax; lea rdx, [rax+rbx*2]; sub rdx, rcx; and rdx, 0x7fff; add rsi, rdx; dec ecx; jnz 1b
  alu: 'b9ffffff7fbb030000004801d84831c3488d14584829ca4881e2ff7f00004801d6ffc975e5f4',
  // mov edi, 0x400000; mov ecx, 0x7fffffff
  // 1: mov rax, [rdi]; add rax, rcx; mov [rdi+8], rax; add rdi, 16; and rdi, 0x40fff0; dec ecx; jnz 1b
  memory: 'bf00004000b9ffffff7f488b074801c8488947084883c7104881e7f0ff4000ffc975e7f4',
  // mov ecx, 0x7fffffff; 1: call f; call g; dec ecx; jnz 1b; hlt; f: add eax, 1; ret; g: call f; ret
  callret: 'b9ffffff7fe80a000000e809000000ffc975f2f483c001c3e8f7ffffffc3',
};

const BUDGET = 20_000_000;

function machine(code: string, jit: boolean, protect = false): Cpu {
  const memory = new PhysicalMemory(16 * layout.MIB);
  const cpu = new Cpu(memory, { jit });
  bootVcpu(cpu, buildBootImage(memory, { vcpus: 1 }), 0);
  memory.writeBytes(layout.KERNEL_EXEC, Buffer.from(code, 'hex'));
  if (protect) lockDown(memory);
  cpu.setRip(BigInt(layout.KERNEL_EXEC));
  return cpu;
}

/**
 * Second-stage rights of a locked-down kernel on the boot image (layout.ts): everything read+write
 * and not executable, the IDT stubs, kernel text and the exec area read+execute, read-only data
 * read-only. The paging structures stay writable: the walker sets their accessed bits.
 */
function lockDown(memory: PhysicalMemory): void {
  const s2 = memory.secondStage;
  const frame = (a: number): number => a / layout.PAGE;
  s2.protect(0, memory.frameCount, S2_READ | S2_WRITE);
  s2.protect(frame(layout.RODATA), 1, S2_READ);
  s2.protect(frame(layout.STUBS), 2, S2_READ | S2_EXEC);
  s2.protect(frame(layout.KERNEL_EXEC), 1, S2_READ | S2_EXEC);
}

/** Million guest instructions per second for one run of `budget` instructions. */
function measure(cpu: Cpu, budget: number): number {
  const start = process.hrtime.bigint();
  const r = cpu.run(budget);
  const ns = Number(process.hrtime.bigint() - start);
  if (r.kind !== 'budget') throw new Error(`benchmark loop stopped early: ${JSON.stringify(r)}`);
  return budget / ns * 1000;
}

/**
 * The core's share of an MSR-exit round trip (host/kvm's target is under 1 µs in total): a
 * guest RDMSR loop; each run() stops at the RDMSR, the "hypervisor" answers with writeGpr32
 * and skipInstruction, and runs again.
 */
function rdmsrRoundTrip(count: number): number {
  // 1: rdmsr; jmp 1b
  const cpu = machine('0f32ebfc', true);
  const start = process.hrtime.bigint();
  for (let k = 0; k < count; k++) {
    const r = cpu.run(1000);
    if (r.kind !== 'rdmsr') throw new Error(`expected an RDMSR intercept, got ${r.kind}`);
    cpu.writeGpr32(0, k);
    cpu.writeGpr32(2, 0);
    cpu.skipInstruction();
  }
  return Number(process.hrtime.bigint() - start) / count;
}

rdmsrRoundTrip(20_000);
report('x86.rdmsr_intercept_roundtrip', await sample(() => rdmsrRoundTrip(200_000)), 'ns/op');

for (const jit of [true, false]) {
  for (const [name, code] of Object.entries(LOOPS)) {
    const cpu = machine(code, jit);
    const budget = jit ? BUDGET : BUDGET / 4;
    measure(cpu, budget / 4); // warm-up: compile, fill the TLB
    const samples = await sample(() => measure(cpu, budget));
    report(`x86.${name}${jit ? '' : '.interpreter'}`, samples, 'Minsn/s');
  }
}

for (const name of ['alu', 'memory']) {
  const cpu = machine(LOOPS[name]!, true, true);
  measure(cpu, BUDGET / 4);
  report(`x86.${name}.protected`, await sample(() => measure(cpu, BUDGET)), 'Minsn/s');
}
