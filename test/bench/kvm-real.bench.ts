/**
 * The real KVM backend (host/kvm/real) on the machine's /dev/kvm (JSON Lines names kvm_real.*),
 * each loop also driven from C (kvm-real-loop.c, compiled with gcc here) on the same boot state
 * and code (and the same signal mask, see there), so that the figures show what Node.js and
 * koffi add per exit:
 *   kvm_real.msr_inkernel          ns per RDMSR of EFER handled in the kernel, in a guest loop
 *                                  (`rdmsr; dec ebx; jnz`: one KVM_RUN for the whole loop)
 *   kvm_real.msr_exit_roundtrip    ns per filtered RDMSR (POWER_CTL denied, KVM_MSR_EXIT_REASON_FILTER)
 *                                  answered from user space: exit → msr.data = 0 → KVM_RUN again
 *   *_c                            the same loop driven from C
 *   kvm_real.exit_overhead         (Node − C) / C for the round trip, in % (target: ≤ 10)
 *   *_cpu                          the same in CPU time (user + system) of the driving process per
 *                                  iteration: other load on a shared machine stretches wall time
 *                                  (the process waits for a CPU) far more than CPU time
 * Node and C runs alternate, one of each per run, so that both see the same machine load. Where
 * /dev/kvm (or koffi, or gcc for the C side) is unusable, the figures say "not run: why".
 * On a PVM host all CPL0 guest code runs through KVM's instruction emulator (≈ 1.4 µs per
 * instruction): the figures are dominated by it, the same on both sides.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_READ, MSR_EFER, MSR_IA32_POWER_CTL,
} from '../../protocol/abi.js';
import type { PhysicalMemory } from '../../host/x86/memory.js';
import { bootRegs, bootSregs, buildBootImage, type BootLayout } from '../../host/vmm/boot/index.js';
import { deadlineIn, openKvm, probeKvm, type Kvm } from '../../host/kvm/real/index.js';
import { decodeCpuid, encodeCpuid } from '../../host/kvm/real/cpuid.js';
import { decodeRegs, decodeSregs, encodeRegs, encodeSregs } from '../../host/kvm/real/regs-codec.js';
import { SIZEOF_REGS, SIZEOF_SREGS } from '../../host/kvm/real/uapi.js';
import { jsonOutput, median, report, runs } from './report.js';

const MEMORY = 4 * 1024 * 1024;
const IN_KERNEL_ITERATIONS = 100_000;
const ROUND_TRIPS = 20_000;

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** xor eax,eax; xor edx,edx; mov ecx, msr; mov ebx, n; loop: rdmsr; dec ebx; jnz loop; hlt */
function msrLoop(msr: number, iterations: number): Uint8Array {
  return Uint8Array.from([0x31, 0xc0, 0x31, 0xd2, 0xb9, ...le32(msr), 0xbb, ...le32(iterations), 0x0f, 0x32, 0xff, 0xcb, 0x75, 0xfa, 0xf4]);
}

/** The guest state both sides load: memory image with the loop at the kernel exec slot, regs, sregs, CPUID. */
interface Image {
  memory: Uint8Array;
  regs: Uint8Array;
  sregs: Uint8Array;
  cpuid: Uint8Array;
}

function image(kvm: Kvm, msr: number, iterations: number): Image {
  const vm = kvm.createVm({ memorySize: MEMORY });
  try {
    const boot: BootLayout = buildBootImage(vm.memory as unknown as PhysicalMemory, { vcpus: 1 });
    const at = boot.kernelExecSlot(0).base;
    vm.memory.writeBytes(at, msrLoop(msr, iterations));
    const regs = new DataView(new ArrayBuffer(SIZEOF_REGS));
    encodeRegs(regs, 0, { ...bootRegs(boot, 0), rip: BigInt(at) }, 'bench');
    const sregs = new DataView(new ArrayBuffer(SIZEOF_SREGS));
    encodeSregs(sregs, 0, bootSregs(boot, 0), 'bench');
    const supported = kvm.getSupportedCpuid();
    const cpuid = encodeCpuid(supported, supported.length, 'bench');
    return {
      memory: vm.memory.readBytes(0, MEMORY),
      regs: new Uint8Array(regs.buffer),
      sregs: new Uint8Array(sregs.buffer),
      cpuid: new Uint8Array(cpuid.buffer),
    };
  } finally {
    vm.close();
  }
}

/** ns per iteration: wall-clock, and CPU time (user + system) of the driving process. */
interface Sample {
  wall: number;
  cpu: number;
}

/** The Node side: the same setup as the C program, then the timed loop. */
function nodeLoop(kvm: Kvm, img: Image, exits: boolean, iterations: number): Sample {
  const vm = kvm.createVm({ memorySize: MEMORY });
  try {
    vm.memory.writeBytes(0, img.memory);
    if (exits) {
      vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [KVM_MSR_EXIT_REASON_FILTER]);
      vm.setMsrFilter({ flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: KVM_MSR_FILTER_READ, base: MSR_IA32_POWER_CTL, nmsrs: 1, bitmap: new Uint8Array(8) }] });
    }
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid2(decodeCpuid(new DataView(img.cpuid.buffer)));
    // Decoded back through the backend's own codec: the same bytes the C side loads.
    vcpu.setSregs(decodeSregs(new DataView(img.sregs.buffer), 0));
    vcpu.setRegs(decodeRegs(new DataView(img.regs.buffer), 0));
    // One deadline for the whole operation: the timer is armed once.
    const deadline = deadlineIn(60_000);
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (;;) {
      const exit = vcpu.run({ deadline });
      if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
        exit.msr.data = 0n;
        exit.msr.error = 0;
        continue;
      }
      if (exit.reason === 'KVM_EXIT_HLT') break;
      throw new Error(`unexpected exit ${exit.reason}${exit.timed_out ? ' (timed out)' : ''}`);
    }
    const wall = Number(process.hrtime.bigint() - start) / iterations;
    const cpu = process.cpuUsage(cpu0);
    return { wall, cpu: ((cpu.user + cpu.system) * 1000) / iterations };
  } finally {
    vm.close();
  }
}

function notRun(why: string): void {
  for (const name of ['kvm_real.msr_inkernel', 'kvm_real.msr_exit_roundtrip']) {
    if (jsonOutput) process.stdout.write(JSON.stringify({ name, notRun: why }) + '\n');
    else process.stdout.write(`${name.padEnd(28)} not run: ${why}\n`);
  }
}

/** Compiles the C driver; its path, or why it cannot be had. */
function compileC(dir: string): { exe: string } | { why: string } {
  const gcc = spawnSync('gcc', ['-O2', '-o', join(dir, 'loop'), 'test/bench/kvm-real-loop.c', '-lpthread'], { encoding: 'utf8' });
  if (gcc.error !== undefined) return { why: 'gcc is not on PATH' };
  if (gcc.status !== 0) return { why: `gcc failed: ${gcc.stderr.trim().split('\n')[0]}` };
  return { exe: join(dir, 'loop') };
}

function cLoop(exe: string, dir: string, mode: 'inkernel' | 'exit', iterations: number): Sample {
  const out = execFileSync(exe, [dir, mode, String(iterations)], { encoding: 'utf8', env: { ...process.env, PINBOX_MSR: String(MSR_IA32_POWER_CTL) } });
  const [wall, cpu] = out.trim().split(' ').map(Number) as [number, number];
  return { wall, cpu };
}

function writeImage(dir: string, img: Image): void {
  writeFileSync(join(dir, 'memory.bin'), img.memory);
  writeFileSync(join(dir, 'regs.bin'), img.regs);
  writeFileSync(join(dir, 'sregs.bin'), img.sregs);
  writeFileSync(join(dir, 'cpuid.bin'), img.cpuid);
}

const probe = await probeKvm();
if (probe.verdict !== 'usable') {
  notRun(probe.summary);
} else {
  const kvm = await openKvm();
  const root = mkdtempSync(join(tmpdir(), 'pinbox-kvm-real-bench-'));
  try {
    const c = compileC(root);
    const inKernelDir = join(root, 'inkernel');
    const exitDir = join(root, 'exit');
    for (const d of [inKernelDir, exitDir]) mkdirSync(d);
    const inKernelImg = image(kvm, MSR_EFER, IN_KERNEL_ITERATIONS);
    const exitImg = image(kvm, MSR_IA32_POWER_CTL, ROUND_TRIPS);
    writeImage(inKernelDir, inKernelImg);
    writeImage(exitDir, exitImg);
    // Warm up both paths once (JIT, page faults on the guest memory).
    nodeLoop(kvm, exitImg, true, ROUND_TRIPS);
    const samples = { inNode: [] as Sample[], inC: [] as Sample[], exNode: [] as Sample[], exC: [] as Sample[] };
    for (let i = 0; i < runs; i++) {
      samples.inNode.push(nodeLoop(kvm, inKernelImg, false, IN_KERNEL_ITERATIONS));
      if ('exe' in c) samples.inC.push(cLoop(c.exe, inKernelDir, 'inkernel', IN_KERNEL_ITERATIONS));
      samples.exNode.push(nodeLoop(kvm, exitImg, true, ROUND_TRIPS));
      if ('exe' in c) samples.exC.push(cLoop(c.exe, exitDir, 'exit', ROUND_TRIPS));
    }
    const wall = (s: Sample[]): number[] => s.map((x) => x.wall);
    const cpu = (s: Sample[]): number[] => s.map((x) => x.cpu);
    report('kvm_real.msr_inkernel', wall(samples.inNode), 'ns');
    if ('exe' in c) report('kvm_real.msr_inkernel_c', wall(samples.inC), 'ns');
    report('kvm_real.msr_exit_roundtrip', wall(samples.exNode), 'ns');
    if ('exe' in c) {
      report('kvm_real.msr_exit_roundtrip_c', wall(samples.exC), 'ns');
      report('kvm_real.msr_exit_roundtrip_cpu', cpu(samples.exNode), 'ns');
      report('kvm_real.msr_exit_roundtrip_cpu_c', cpu(samples.exC), 'ns');
      // Per run pair, what Node adds over C, as a share of C: in wall time and in CPU time.
      const share = (n: number[], k: number[]): number[] => n.map((x, i) => ((x - k[i]!) / k[i]!) * 100);
      report('kvm_real.exit_overhead', share(wall(samples.exNode), wall(samples.exC)), '%');
      report('kvm_real.exit_overhead_cpu', share(cpu(samples.exNode), cpu(samples.exC)), '%');
      if (!jsonOutput) {
        const ns = (n: Sample[], k: Sample[], f: (s: Sample[]) => number[]): string => (median(f(n)) - median(f(k))).toFixed(0);
        process.stdout.write(`  (Node adds ${ns(samples.exNode, samples.exC, wall)} ns wall, ${ns(samples.exNode, samples.exC, cpu)} ns CPU per exit over C, medians; target ≤ 10%)\n`);
      }
    } else if (!jsonOutput) {
      process.stdout.write(`kvm_real.*_c                 not run: ${c.why}\n`);
    }
  } finally {
    kvm.close();
    rmSync(root, { recursive: true, force: true });
  }
}
