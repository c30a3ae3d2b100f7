/**
 * The three failure kinds: GuestFault (the guest action raised an exception), HostError (the
 * host refused, or the answer never came) and InvalidArgumentError (nothing was sent), and the
 * names of exceptions (Intel SDM vol. 3A, Table 6-1).
 */
import test from 'ava';
import { ProtocolError } from '../../protocol/index.js';
import {
  GuestFault, HostError, InvalidArgumentError, describeFault, exceptionName,
} from '../../guest-sdk/index.js';
import { connectedGuest } from './scripted-host.js';

test('exception names follow SDM Table 6-1; faults read #GP(0), #PF(0x1b), #UD, numbers in hex as in the kernel\'s trace', (t) => {
  const expected: [number, string][] = [
    [0, '#DE'], [1, '#DB'], [2, 'NMI'], [3, '#BP'], [4, '#OF'], [5, '#BR'], [6, '#UD'], [7, '#NM'], [8, '#DF'],
    [10, '#TS'], [11, '#NP'], [12, '#SS'], [13, '#GP'], [14, '#PF'], [16, '#MF'], [17, '#AC'], [18, '#MC'],
    [19, '#XM'], [20, '#VE'], [21, '#CP'],
  ];
  for (const [vector, name] of expected) t.is(exceptionName(vector), name);
  t.is(exceptionName(9), 'vector 0x9', 'coprocessor segment overrun has no mnemonic');
  t.is(exceptionName(32), 'vector 0x20');
  t.is(describeFault({ vector: 13, errorCode: 0 }), '#GP(0)');
  t.is(describeFault({ vector: 14, errorCode: 0x1b }), '#PF(0x1b)');
  t.is(describeFault({ vector: 8, errorCode: 9 }), '#DF(0x9)', 'one format everywhere: hex, as conformance reports write it');
  t.is(describeFault({ vector: 6 }), '#UD');
});

test('a faulting operation rejects with a GuestFault naming the operation, vector, error code and exits', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(0x1a0, { value: 1n, filtered: true });
  const e = await t.throwsAsync(guest.rdmsr(0x10), { instanceOf: GuestFault });
  t.is(e.message, 'rdmsr 0x10 raised #GP(0)');
  t.is(e.name, 'GuestFault');
  t.is(e.op, 'rdmsr');
  t.is(e.vector, 13);
  t.is(e.errorCode, 0);
  t.deepEqual(e.exits, []);

  const filtered = await t.throwsAsync(guest.wrmsr(0x1a0, 0x1_0000_0000n), { instanceOf: GuestFault });
  t.is(filtered.message, 'wrmsr 0x1a0 value 0x100000000 raised #GP(0)');
  t.deepEqual(filtered.exits, [{ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index: 0x1a0, data: 0x1_0000_0000n, error: 1 } }]);

  t.is((await t.throwsAsync(guest.readCr(3, { cpl: 3 }), { instanceOf: GuestFault })).message, 'readCr cr3 at CPL 3 raised #GP(0)');
  t.is((await t.throwsAsync(guest.writeCr(4, 0x20n, { cpl: 3 }), { instanceOf: GuestFault })).message, 'writeCr cr4 value 0x20 at CPL 3 raised #GP(0)');
  t.is((await t.throwsAsync(guest.lmsw(1, { cpl: 3 }), { instanceOf: GuestFault })).message, 'lmsw 0x1 at CPL 3 raised #GP(0)');
  t.is((await t.throwsAsync(guest.clts({ cpl: 3 }), { instanceOf: GuestFault })).message, 'clts at CPL 3 raised #GP(0)');
  guest.close();
});

test('a host refusal rejects with a HostError carrying code, message, path and errno', async (t) => {
  const { guest, host } = await connectedGuest();
  host.refuse = (r) => {
    if (r.op === 'wrmsr') return Object.assign(new Error('the MSR filter update is in progress'), { errno: 'EBUSY' });
    if (r.op === 'rdmsr') return new ProtocolError('not_found', 'no vCPU 0 in VM default', { path: 'vcpu' });
    return undefined;
  };
  const kvm = await t.throwsAsync(guest.wrmsr(0x10, 1n), { instanceOf: HostError });
  t.is(kvm.code, 'kvm_error');
  t.is(kvm.errno, 'EBUSY');
  t.true(kvm.remote);
  t.is(kvm.operation, 'wrmsr 0x10 value 0x1');
  t.is(kvm.message, 'wrmsr 0x10 value 0x1: the host refused it: the MSR filter update is in progress [kvm_error EBUSY]');

  const notFound = await t.throwsAsync(guest.rdmsrSafe(0x10), { instanceOf: HostError }, 'Safe forms reject on host errors too');
  t.is(notFound.code, 'not_found');
  t.is(notFound.path, 'vcpu');
  t.is(notFound.errno, undefined);
  guest.close();
});

test('operations waiting when the connection closes reject with a local HostError connection_closed', async (t) => {
  const { guest } = await connectedGuest();
  const waiting = guest.rdmsr(0x10);
  guest.close();
  const e = await t.throwsAsync(waiting, { instanceOf: HostError });
  t.is(e.code, 'connection_closed');
  t.false(e.remote);
  const after = await t.throwsAsync(guest.cpuid(0), { instanceOf: HostError });
  t.is(after.code, 'connection_closed');
});

test('bad arguments reject with an InvalidArgumentError naming method and argument, and nothing is sent', async (t) => {
  const { guest, host, frames } = await connectedGuest();
  const cases: [() => Promise<unknown>, string, string][] = [
    [() => guest.rdmsr(-1), 'index', 'rdmsr: index must be an integer 0..0xffffffff, got -1'],
    [() => guest.rdmsr(0x1_0000_0000), 'index', 'rdmsr: index must be an integer 0..0xffffffff, got 4294967296'],
    [() => guest.rdmsr(1.5), 'index', 'rdmsr: index must be an integer 0..0xffffffff, got 1.5'],
    [() => guest.wrmsr(0x10, 2 ** 60), 'value', 'wrmsr: value must be a bigint 0..2^64-1 or a safe non-negative integer, got 1152921504606846976 (numbers above 2^53-1 lose bits: pass a bigint)'],
    [() => guest.wrmsr(0x10, 1n << 64n), 'value', 'wrmsr: value must be a bigint 0..2^64-1 or a safe non-negative integer, got 18446744073709551616n'],
    [() => guest.wrmsr(0x10, -1n), 'value', 'wrmsr: value must be a bigint 0..2^64-1 or a safe non-negative integer, got -1n'],
    [() => guest.writeCr(4, '0x20' as never), 'value', 'writeCr: value must be a bigint 0..2^64-1 or a safe non-negative integer, got "0x20"'],
    [() => guest.readCr(5 as never), 'cr', 'readCr: cr must be 0, 2, 3, 4 or 8, got 5'],
    [() => guest.rdmsr(0x10, { cpl: 1 as never }), 'options.cpl', 'rdmsr: options.cpl must be 0 or 3, got 1'],
    [() => guest.rdmsr(0x10, { cp: 3 } as never), 'options.cp', 'rdmsr: options.cp is not an option of rdmsr (known: cpl)'],
    [() => guest.lmsw(0x10000), 'value', 'lmsw: value must be an integer 0..0xffff, got 65536'],
    [() => guest.hypercall(13, 1, 2, 3, 4, 5), 'args', 'hypercall: args are a0..a3 (RBX, RCX, RDX, RSI): at most 4, got 5'],
    [() => guest.hypercall(13, 0, { insn: 'syscall' as never }), 'options.insn', 'hypercall: options.insn must be one of "vmcall", "vmmcall", got "syscall"'],
    [() => guest.hypercall(13, -1), 'a0', 'hypercall: a0 must be a bigint 0..2^64-1 or a safe non-negative integer, got -1'],
    [() => guest.exec(new Uint8Array(0)), 'code', 'exec: code must be a Uint8Array of 1..65536 bytes, got 0 bytes'],
    [() => guest.exec(new Uint8Array(1), { regs: { rip: 0n } as never }), 'options.regs.rip', 'exec: options.regs.rip is not a general-purpose register'],
    [() => guest.exec(new Uint8Array(1), { budget: -1 }), 'options.budget', 'exec: options.budget must be an integer 0..0xffffffff, got -1'],
  ];
  for (const [call, argument, message] of cases) {
    const e = await t.throwsAsync(call(), { instanceOf: InvalidArgumentError });
    t.true(e instanceof TypeError);
    t.is(e.argument, argument);
    t.is(e.message, message);
  }
  t.deepEqual(host.log, []);
  t.deepEqual(frames, []);
  guest.close();
});
