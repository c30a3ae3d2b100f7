/**
 * The remote target's own pieces: where its guest connections go (the control hello's
 * guestEndpoints, PROTOCOL.md §3), and exits from the wire's names back to the kernel's numbers
 * per ABI profile, with msr.data as KVM filled it.
 */
import test from 'ava';
import { HEKI_PROFILES, KVM_EXIT_X86_RDMSR, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_UNKNOWN } from '../../protocol/abi.js';
import { guestEndpointUrl } from '../../host/conform/remote/guest-endpoint-url.js';
import { targetExitOfWire } from '../../host/conform/remote/wire-exit.js';

test('the guest endpoint: as named; a wildcard TCP host is the control endpoint\'s; stdio: and none are errors', (t) => {
  t.is(guestEndpointUrl('unix:/run/c.sock', ['unix:/run/g.sock']), 'unix:/run/g.sock');
  t.is(guestEndpointUrl('tcp:10.0.0.5:7001', ['tcp:0.0.0.0:7000']), 'tcp:10.0.0.5:7000');
  t.is(guestEndpointUrl('tcp:[fe80::1]:7001', ['tcp:[::]:7000']), 'tcp:[fe80::1]:7000');
  t.is(guestEndpointUrl('unix:/run/c.sock', ['tcp:0.0.0.0:7000']), 'tcp:127.0.0.1:7000');
  t.is(guestEndpointUrl('unix:/run/c.sock', ['stdio:', 'tcp:127.0.0.1:7000']), 'tcp:127.0.0.1:7000');
  t.throws(() => guestEndpointUrl('unix:/run/c.sock', ['stdio:']), { message: 'the pinbox server at unix:/run/c.sock has no guest endpoint this runner can dial (it names stdio:)' });
  t.throws(() => guestEndpointUrl('unix:/run/c.sock', undefined), { message: /^the pinbox server at unix:\/run\/c\.sock does not say where its guest endpoint is/ });
});

test('exits: names to the kernel\'s numbers per profile; a read\'s data is exitData, what KVM put there', (t) => {
  const read = { reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER' as const, index: 0xda0, data: 5n, error: 0, exitData: 0n } };
  t.deepEqual(targetExitOfWire(read, 'v2'), { reason: KVM_EXIT_X86_RDMSR, msr: { reason: KVM_MSR_EXIT_REASON_FILTER, index: 0xda0, data: 0n } });
  const write = { reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'UNKNOWN' as const, index: 0xdeadbeef, data: 0x100000002n, error: 1 } };
  t.deepEqual(targetExitOfWire(write, 'v2'), { reason: KVM_EXIT_X86_WRMSR, msr: { reason: KVM_MSR_EXIT_REASON_UNKNOWN, index: 0xdeadbeef, data: 0x100000002n } });
  const denial = { reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4' as const, value: 0x6a0n } };
  t.deepEqual(targetExitOfWire(denial, 'v2'), { reason: HEKI_PROFILES.v2.KVM_EXIT_HEKI_DENIAL, heki: { reason: 2, value: 0x6a0n } });
  t.deepEqual(targetExitOfWire(denial, 'v3'), { reason: HEKI_PROFILES.v3.KVM_EXIT_HEKI_DENIAL, heki: { reason: 2, value: 0x6a0n } });
  t.throws(() => targetExitOfWire({ reason: 'KVM_EXIT_NEW_THING' }, 'v2'), { message: 'the server reported the exit reason "KVM_EXIT_NEW_THING", which has no number the runner knows' });
});
