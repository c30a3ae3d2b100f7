/**
 * IN/OUT intercepts: kvm_fast_pio() and its completions complete_fast_pio_in(),
 * complete_fast_pio_out() and complete_fast_pio_out_port_0x7e() (arch/x86/kvm/x86.c).
 * pinbox emulates no device in the kernel, so every port goes to user space.
 */
import { KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT } from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import type { VcpuArch } from './vcpu-arch.js';
import { RAX } from '../x86/state.js';

/** kvm_fast_pio(): the KVM_EXIT_IO exit for IN or OUT, always to user space. */
export function handleIo(v: VcpuArch, port: number, size: 1 | 2 | 4, isIn: boolean, value: number): true {
  const run = v.run;
  run.io.direction = isIn ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
  run.io.size = size;
  run.io.port = port;
  run.io.count = 1;
  run.io.data = isIn ? 0 : value;
  v.stat.io_exits++;
  // An OUT is traced as it leaves; an IN when user space's data arrives (complete_emulator_pio_in()).
  const trace = v.vm.trace;
  if (!isIn && trace.active) trace.emit('kvm_pio', { vcpu_id: v.id, rw: 'out', port, size, count: 1, val: value });
  if (!isIn && port === 0x7e) {
    // KVM_X86_QUIRK_OUT_7E_INC_RIP (on by default): old user space expects RIP past the OUT.
    v.skipEmulatedInstruction();
    return v.exitToUserSpace('KVM_EXIT_IO', completePioOutPort0x7e);
  }
  v.pioRip = v.cpu.getRip();
  return v.exitToUserSpace('KVM_EXIT_IO', isIn ? completePioIn : completePioOut);
}

/** The value user space stored for an IN, checked before KVM_RUN changes anything (complete-userspace-io.ts). */
function checkPioInReply(v: VcpuArch): number {
  const run = v.run;
  const data: unknown = run.io.data;
  const max = 2 ** (8 * run.io.size) - 1;
  if (typeof data !== 'number' || !Number.isInteger(data) || data < 0 || data > max) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.io.data must be an integer 0..${max} for a ${run.io.size}-byte IN, got ${String(data)}`);
  }
  return data;
}

/**
 * complete_fast_pio_in(): AL/AX merge into RAX, EAX zero-extends; then the IN retires.
 * Nothing happens if user space moved RIP meanwhile. complete_emulator_pio_in() traces kvm_pio
 * here, with the data user space supplied: the value the guest receives.
 */
export function completePioIn(v: VcpuArch): boolean {
  const run = v.run;
  const data = checkPioInReply(v);
  if (v.cpu.getRip() !== v.pioRip) return false;
  const trace = v.vm.trace;
  if (trace.active) trace.emit('kvm_pio', { vcpu_id: v.id, rw: 'in', port: run.io.port, size: run.io.size, count: run.io.count, val: data });
  if (run.io.size === 4) {
    v.cpu.writeGpr32(RAX, data);
  } else {
    const mask = BigInt(2 ** (8 * run.io.size) - 1);
    v.cpu.writeGpr(RAX, (v.cpu.readGpr(RAX) & ~mask) | BigInt(data));
  }
  v.skipEmulatedInstruction();
  return false;
}
completePioIn.checkReply = checkPioInReply;

/** complete_fast_pio_out(): the OUT retires, unless user space moved RIP meanwhile. */
export function completePioOut(v: VcpuArch): boolean {
  if (v.cpu.getRip() === v.pioRip) v.skipEmulatedInstruction();
  return false;
}

/** complete_fast_pio_out_port_0x7e(): RIP was advanced at the exit already. */
function completePioOutPort0x7e(): boolean {
  return false;
}
