/**
 * What happens to a VM and its pins: onDenial pause/kill and resume, VM reset (clears the
 * pins), INIT (keeps them), triple faults per onShutdown, and the instruction budget.
 */
import test from 'ava';
import { GP_VECTOR, KVM_CAP_X86_USER_SPACE_MSR, X86_CR4_PCE, X86_CR4_SMEP } from '../../protocol/abi.js';
import { code, testVmm } from './vmm-support.js';

const GP0 = { vector: GP_VECTOR, errorCode: 0 };
const pinSmep = { op: 'hypercall', nr: 13n, args: [4n, X86_CR4_SMEP] };
/** lidt [rip+2] (a zero-limit IDT placed right after the next instruction) ; ud2 — #UD → #GP → #DF → shutdown. */
const TRIPLE_FAULT = code(0x0f, 0x01, 0x1d, 0x02, 0, 0, 0, 0x0f, 0x0b, ...new Array(10).fill(0));

async function cr4(vm: ReturnType<typeof testVmm>['vm'], vcpu = 0): Promise<bigint> {
  return ((await vm.perform(vcpu, { op: 'readCr', cr: 4 })) as { value: bigint }).value;
}

test('onDenial "pause": the denied write waits, the VM is paused, other vCPUs wait too; resumeVm delivers the #GP', async (t) => {
  const { vm, named } = testVmm({ vcpus: 2, heki: { onDenial: 'pause' } });
  await vm.perform(0, pinSmep);
  const value = (await cr4(vm)) & ~X86_CR4_SMEP;
  const denied = vm.perform(0, { op: 'writeCr', cr: 4, value });
  let settled = false;
  void denied.then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  t.is(vm.runState, 'paused');
  t.false(settled);
  const other = vm.perform(1, { op: 'rdmsr', index: 0xc0000080 });
  t.like(named('vm_paused'), [{ fields: { cause: 'heki_denial' } }]);
  t.like(named('heki_denial'), [{ fields: { action: 'pause', cr_value: value } }]);
  t.true(vm.resume());
  t.deepEqual(await denied, { fault: GP0, exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4', value } }] });
  t.like(await other, { value: 0xd01n });
  t.false(vm.resume(), 'not paused any more');
});

test('onDenial "kill": the denied request and every later one fail with vm_killed; a reset revives the VM without pins', async (t) => {
  const { vm, named } = testVmm({ heki: { onDenial: 'kill' } });
  await vm.perform(0, pinSmep);
  const value = (await cr4(vm)) & ~X86_CR4_SMEP;
  await t.throwsAsync(vm.perform(0, { op: 'writeCr', cr: 4, value }), { code: 'vm_killed' });
  t.is(vm.runState, 'killed');
  await t.throwsAsync(vm.perform(0, { op: 'clts' }), { code: 'vm_killed', message: /killed \(heki_denial\)/ });
  t.like(named('vm_killed'), [{ fields: { cause: 'heki_denial' } }]);
  vm.reset('control');
  t.is(vm.runState, 'running');
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: 0n });
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value }), { exits: [] }, 'no pin: the write goes through');
});

test('a reset abandons a request paused in a denial (vm_reset), clears pins and stored MSRs, and boots every vCPU', async (t) => {
  const { vm, named } = testVmm({
    vcpus: 2, heki: { onDenial: 'pause' }, msrFilter: { default: 'allow', deny: ['0xda1'] }, msrHandlers: { '0xda1': { write: 'store' } },
  });
  await vm.perform(1, { op: 'wrmsr', index: 0xda1, value: 3n });
  await vm.perform(0, pinSmep);
  const boot = await cr4(vm);
  await vm.perform(1, { op: 'writeCr', cr: 4, value: boot | X86_CR4_PCE });
  const denied = vm.perform(0, { op: 'writeCr', cr: 4, value: boot & ~X86_CR4_SMEP });
  await new Promise((r) => setImmediate(r));
  vm.reset('control');
  await t.throwsAsync(denied, { code: 'vm_reset' });
  t.like(named('vm_reset'), [{ fields: { cause: 'control', pins_cleared: true } }]);
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: 0n });
  t.is(await cr4(vm, 1), boot, 'vCPU 1 is back in the boot state');
  t.like(await vm.perform(1, { op: 'rdmsr', index: 0xda1 }), { value: 0n }, 'stored MSR values are gone');
  t.deepEqual(named('vcpu_init').map((e) => `${e.vcpu}:${e.fields.cause}`).slice(-2), ['0:reset', '1:reset']);
});

test('INIT (initVcpu) boots the vCPU again and keeps the pins', async (t) => {
  const { vm } = testVmm();
  await vm.perform(0, pinSmep);
  const boot = await cr4(vm);
  await vm.perform(0, { op: 'writeCr', cr: 4, value: boot | X86_CR4_PCE });
  vm.initVcpu(0);
  t.is(await cr4(vm), boot);
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP });
  t.like(await vm.perform(0, { op: 'writeCr', cr: 4, value: boot & ~X86_CR4_SMEP }), { fault: GP0 });
});

test('a triple fault: exec stops with "shutdown"; by default the vCPU is booted again and the pins stay', async (t) => {
  const { vm, named } = testVmm();
  await vm.perform(0, pinSmep);
  const stopped = await vm.perform(0, { op: 'exec', code: TRIPLE_FAULT });
  t.like(stopped, { stop: 'shutdown', exits: [] });
  // Only the protocol's fields: the exception chain is `pinbox run`'s (an in-place run), and a
  // server would refuse to send a result with a field its schema lacks.
  t.deepEqual(Object.keys(stopped).sort(), ['exits', 'regs', 'stop']);
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n }, 'the IDT is the boot one again');
  t.deepEqual(named('vcpu_init').map((e) => e.fields.cause), ['create', 'shutdown']);
});

test('onShutdown "reset" resets the VM (pins cleared); "kill" kills it', async (t) => {
  const reset = testVmm({ onShutdown: 'reset' });
  await reset.vm.perform(0, pinSmep);
  t.like(await reset.vm.perform(0, { op: 'exec', code: TRIPLE_FAULT }), { stop: 'shutdown' });
  t.like(reset.named('vm_reset'), [{ fields: { cause: 'shutdown', pins_cleared: true } }]);
  t.deepEqual(reset.vm.hekiPins, { cr0: 0n, cr4: 0n });

  const kill = testVmm({ onShutdown: 'kill' });
  t.like(await kill.vm.perform(0, { op: 'exec', code: TRIPLE_FAULT }), { stop: 'shutdown' });
  t.is(kill.vm.runState, 'killed');
  await t.throwsAsync(kill.vm.perform(0, { op: 'clts' }), { code: 'vm_killed' });
});

test('the instruction budget: an endless exec stops with "budget"; another op that runs out is a limit error', async (t) => {
  const { vm } = testVmm({}, { budget: 5000 });
  const loop = (await vm.perform(0, { op: 'exec', code: code(0xeb, 0xfe) })) as { stop: string; regs: { rip: bigint } };
  t.is(loop.stop, 'budget');
  t.is(loop.regs.rip, 0x100000n, 'at the jmp: the start of vCPU 0\'s kernel exec slot');
  t.like(await vm.perform(0, { op: 'exec', code: code(0xeb, 0xfe), budget: 10 }), { stop: 'budget' });
  await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }, { budget: 1 }), { code: 'limit', message: /budget of 1 guest instructions/ });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n });
});

test('a state KVM cannot enter is invalid_guest_state until initVcpu', async (t) => {
  const { vm } = testVmm();
  // Legacy (non-long) mode is valid for KVM_SET_SREGS but not runnable by the 64-bit core.
  vm.setSregs(0, { efer: 0n, cs: { l: false, db: true } });
  await t.throwsAsync(vm.perform(0, { op: 'clts' }), { code: 'invalid_guest_state' });
  vm.initVcpu(0);
  t.deepEqual(await vm.perform(0, { op: 'clts' }), { exits: [] });
});

test('a reset undoes what control clients changed: capabilities, MSR filter and exit reply are the policy\'s again', async (t) => {
  const { vm, named } = testVmm({ msrFilter: { default: 'allow', deny: ['0xda0'] }, msrHandlers: { '0xda0': { read: 5 } } });
  const filteredRead = { value: 5n, exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: 0xda0, data: 5n, error: 0, exitData: 0n } }] };
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda0 }), filteredRead);
  vm.setMsrExitReply({ error: 0, data: 9n });
  vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [0n]);
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda0 }), { fault: GP0, exits: [] }, 'no exits: #GP');
  vm.setMsrFilter({ flags: 0, ranges: [] });
  vm.reset('control');
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda0 }), filteredRead);
  t.deepEqual(named('msr_filter_changed').map((e) => e.fields.origin), ['policy', 'control', 'policy']);
});

test('a reset clears a filter a control client installed on a VM whose policy has none', async (t) => {
  const { vm } = testVmm({ userSpaceMsr: ['filter'] });
  vm.setMsrFilter({ flags: 0, ranges: [{ flags: 1, base: 0xc0000080, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { fault: GP0 }, 'filtered, no handler');
  vm.reset('control');
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n, exits: [] });
});

const X86_CR4_CET = 1n << 23n;
/** jmp $ — a loop that never ends. */
const SPIN = code(0xeb, 0xfe);

test('a vCPU the VMM boots again after a triple fault or a spent budget keeps every pinned bit set', async (t) => {
  // A host and guest with CET, so that the guest can set CR4.CET and pin it (docs/heki.md §1.4:
  // CET is in the pinnable mask; the pin is ANDed with the host CR4, which has it here).
  const { vm } = testVmm({ hostModel: { cr4: '0xf72ef0' }, guestCpuid: { cet: true } });
  const boot = await cr4(vm);
  t.is(boot & X86_CR4_CET, 0n, 'the boot state has no CET');
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: boot | X86_CR4_CET }), { exits: [] });
  t.like(await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, X86_CR4_CET] }), { ret: 0n });
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: X86_CR4_CET });

  t.like(await vm.perform(0, { op: 'exec', code: TRIPLE_FAULT }), { stop: 'shutdown' });
  t.is(await cr4(vm), boot | X86_CR4_CET, 'booted again after the triple fault, CET still set');
  t.like(await vm.perform(0, { op: 'writeCr', cr: 4, value: boot }), { fault: GP0 }, 'and still pinned');

  t.like(await vm.perform(0, { op: 'exec', code: SPIN, budget: 1000 }), { stop: 'budget' });
  t.is(await cr4(vm), boot | X86_CR4_CET, 'booted again after the budget, CET still set');
});

test('a denial KVM handles in-kernel is logged even when the denial exits were turned off during the same operation', async (t) => {
  const { vm, named } = testVmm({ msrFilter: { default: 'allow', deny: ['0xda1'] } });
  await vm.perform(0, pinSmep);
  const cleared = (await cr4(vm)) & ~X86_CR4_SMEP;
  const imm = [...new Uint8Array(new BigUint64Array([cleared]).buffer)];
  const exec = code(
    0xb9, 0xa1, 0x0d, 0x00, 0x00, // mov ecx, 0xda1
    0x0f, 0x32, //                   rdmsr            (filtered: an exit to the VMM)
    0x48, 0xb8, ...imm, //           mov rax, CR4 without SMEP
    0x0f, 0x22, 0xe0, //             mov cr4, rax     (denied)
    0xf4, //                         hlt
  );
  const result = await vm.perform(0, { op: 'exec', code: exec }, {
    onExit: () => {
      vm.enableCap(236, [0n]); // KVM_CAP_HEKI_DENIAL (v2) = 0: denials no longer exit
      return { error: 0, data: 0n };
    },
  });
  t.like(result, { stop: 'fault', fault: GP0 });
  t.like(named('heki_denial'), [{ fields: { cr_value: cleared, path: 'in-kernel' } }]);
});

test('INIT (initVcpu) under an operation paused in a denial abandons it with vcpu_init; the vCPU then runs anew', async (t) => {
  const { vm } = testVmm({ heki: { onDenial: 'pause' } });
  await vm.perform(0, pinSmep);
  const boot = await cr4(vm);
  const denied = vm.perform(0, { op: 'writeCr', cr: 4, value: boot & ~X86_CR4_SMEP });
  await new Promise((r) => setImmediate(r));
  t.is(vm.runState, 'paused');
  vm.initVcpu(0);
  t.true(vm.resume());
  await t.throwsAsync(denied, { code: 'vcpu_init', message: /got INIT/ });
  t.is(await cr4(vm), boot);
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP });
});
