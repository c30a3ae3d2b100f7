/**
 * `pinbox events` and `pinbox ctl` against a server in this process (issue 11 #11): every op runs,
 * prints for people or as JSON by docs/events.md's rule, takes its token from a file (the one
 * serve writes beside a unix socket by default), and refuses mistakes as the other commands do
 * (exit 2, named, with a hint). Expectations come from PROTOCOL.md §6 and KVM, not from output.
 */
import test from 'ava';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../guest-sdk/index.js';
import { KVM_CAP_X86_USER_SPACE_MSR, X86_CR0_TS, X86_CR0_WP, X86_CR4_SMEP } from '../../protocol/abi.js';
import { decodeEventLine } from '../../protocol/events/index.js';
import { CTL_OPS } from '../../host/cli/ctl-spec.js';
import { pinbox, startPinbox } from './cli-support.js';
import { until, withServer, type TestServer } from './server-support.js';

const ctl = (s: TestServer, ...args: string[]) => pinbox(['ctl', '--host', s.controlUrl, ...args]);

test('every ctl op has --help; mistakes are exit 2, named, with a hint', async (t) => {
  for (const op of CTL_OPS) {
    const r = await pinbox(['ctl', op.name, '--help']);
    t.is(r.code, 0, op.name);
    t.regex(r.out, new RegExp(`^pinbox ctl ${op.name} — .*\\n\\nUsage: pinbox ctl ${op.name} --host`), op.name);
  }
  t.regex((await pinbox(['ctl', '--help'])).out, /Ops:\n {2}stats/);
  t.regex((await pinbox(['help', 'ctl', 'holdExit'])).out, /^pinbox ctl holdExit — /);
  const none = await pinbox(['ctl', '--host', 'unix:/x']);
  t.is(none.code, 2);
  t.regex(none.err, /^pinbox ctl: no OP given \(ops: stats, createVm/);
  const typo = await pinbox(['ctl', '--host', 'unix:/x', 'resetVM', 'a']);
  t.is(typo.err, "pinbox ctl: unknown op 'resetVM'; did you mean 'resetVm'? (ops: " + CTL_OPS.map((o) => o.name).join(', ') + ")\nTry 'pinbox ctl --help'.\n");
  t.like(await pinbox(['ctl', 'resetVm', 'a']), { code: 2, err: "pinbox ctl resetVm: --host is required (unix:PATH, tcp:HOST:PORT or tcp:PORT)\nTry 'pinbox ctl resetVm --help'.\n" });
  t.regex((await pinbox(['ctl', '--host', 'unix:/x', 'initVcpu', 'vm', '64'])).err, /^pinbox ctl initVcpu: VCPU must be a whole number from 0 to 63, got '64' \(above 63\)/);
  t.regex((await pinbox(['ctl', '--host', 'tcp:7', 'stats'])).err, /^pinbox ctl stats: a control client needs the server's token/);
  t.regex((await pinbox(['events', '--host', 'unix:/x', '--name', 'heki_denail'])).err, /--name needs one of .*, got 'heki_denail' \(did you mean 'heki_denial'\?\)/);
});

test('ctl: the token from PATH.token (serve\'s default), from --token-file, or a clear refusal', async (t) => {
  await withServer({}, async (s) => {
    t.is(s.server.tokenFile, `${s.controlUrl.slice(5)}.token`);
    t.like(await ctl(s, 'stats'), { code: 0 });
    const file = join(s.dir, 'other.token');
    writeFileSync(file, `${s.server.token}\n`);
    t.like(await ctl(s, '--token-file', file, 'stats'), { code: 0 });
    writeFileSync(file, 'wrong\n');
    const wrong = await ctl(s, '--token-file', file, 'stats');
    t.is(wrong.code, 1);
    t.is(wrong.err, 'pinbox ctl stats: the control token is wrong [bad_token]\n');
  });
});

test('ctl runs every op: VMs, snapshots to files, MSR filter from JSON, registers, MSRs, capabilities, the ring', async (t) => {
  await withServer({}, async (s) => {
    const policy = join(s.dir, 'p.json');
    writeFileSync(policy, JSON.stringify({ vcpus: 2, profile: 'v3' }));
    t.is((await ctl(s, 'createVm', 'w', '--policy', policy)).out, 'VM "w" made: 2 vCPUs, Heki ABI v3\n');
    t.is((await ctl(s, 'createVm', 'locked', '--guest-token', 'sesame')).code, 0);
    await t.throwsAsync(connect(s.guestUrl, { vm: 'locked' }), { code: 'bad_token' });
    (await connect(s.guestUrl, { vm: 'locked', token: 'sesame' })).close();
    t.is((await ctl(s, 'destroyVm', 'locked')).code, 0);
    t.like(JSON.parse((await ctl(s, '--json', 'stats')).out), { vms: 1, connections: 1, extra: { maxVms: 64, budget: 1000000 } });
    // KVM_CAP_X86_USER_SPACE_MSR: 1 (docs/msr-filter.md §1.1); a v3 VM's KVM_CAP_HEKI_DENIAL is 237 and answers 3 (docs/heki.md §3.1).
    t.is((await ctl(s, 'checkExtension', String(KVM_CAP_X86_USER_SPACE_MSR))).out, 'KVM_CAP_X86_USER_SPACE_MSR (188): 1\n');
    t.is((await ctl(s, 'checkExtension', 'KVM_CAP_HEKI_DENIAL', '--vm', 'w', '--profile', 'v3')).out, 'KVM_CAP_HEKI_DENIAL (237): 3\n');
    t.is((await ctl(s, 'enableCap', 'w', 'KVM_CAP_X86_USER_SPACE_MSR', '4')).code, 0);
    const bad = await ctl(s, 'enableCap', 'w', 'KVM_CAP_X86_USER_SPACE_MSR', '8');
    t.is(bad.code, 1);
    t.regex(bad.err, /\[kvm_error EINVAL\]\n$/);

    const filter = join(s.dir, 'filter.json');
    writeFileSync(filter, JSON.stringify({ default: 'allow', deny: [{ msr: '0x10', access: 'read' }] }));
    t.is((await ctl(s, 'setMsrFilter', 'w', filter)).code, 0, 'a policy\'s msrFilter, alone');
    writeFileSync(filter, JSON.stringify({ msrFilter: { default: 'sideways' } }));
    const badFilter = await ctl(s, 'setMsrFilter', 'w', filter);
    t.is(badFilter.code, 2);
    t.regex(badFilter.err, /\/msrFilter\/default/);

    t.is((await ctl(s, 'setRegs', 'w', '1', 'r13=0x1234', 'rax=5')).code, 0);
    const regs = JSON.parse((await ctl(s, '--json', 'getRegs', 'w', '1')).out) as Record<string, string>;
    t.like(regs, { r13: '0x1234', rax: '0x5' });
    t.is((await ctl(s, 'setSregs', 'w', '0', 'cr8=0x2')).code, 0);
    t.like(JSON.parse((await ctl(s, '--json', 'getSregs', 'w', '0')).out), { cr8: '0x2', efer: '0xd01', cs: { selector: 16, l: true } });
    t.is((await ctl(s, 'setMsrs', 'w', '0', '0xc0000102=0xabc')).out, 'KVM wrote 1 of 1 MSR\n');
    t.deepEqual(JSON.parse((await ctl(s, '--json', 'getMsrs', 'w', '0', '0xc0000102')).out), { nmsrs: 1, entries: [{ index: '0xc0000102', value: '0xabc' }] });

    const guest = await connect(s.guestUrl, { vm: 'w' });
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const snap = join(s.dir, 'w.snap');
    t.is((await ctl(s, 'snapshot', 'w', snap)).code, 0);
    t.true(statSync(snap).size > 0);
    t.is((await ctl(s, 'resetVm', 'w')).out, 'VM "w" reset\n');
    const cr4 = await guest.readCr(4);
    t.true((await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP)).ok, 'a reset clears the pins');
    t.is((await ctl(s, 'restore', 'w', snap)).code, 0);
    t.false((await guest.writeCrSafe(4, (await guest.readCr(4)) & ~X86_CR4_SMEP)).ok, 'the snapshot brings them back');

    t.is((await ctl(s, 'setMsrExitReply', 'w', 'error=0', 'data=0x77')).code, 0);
    t.is(await guest.rdmsr(0x10), 0x77n, 'the filtered read exits, and the reply set from the command line answers it');
    t.is((await ctl(s, 'setMsrExitReply', 'w', 'policy')).code, 0);
    t.regex((await ctl(s, 'setMsrExitReply', 'w', 'error=300')).err, /error=N, N from 0 to 255/);

    t.is((await ctl(s, 'pauseVm', 'w')).code, 0);
    t.is(s.vmm.get('w')!.runState, 'paused');
    t.is((await ctl(s, 'resumeVm', 'w')).code, 0);
    t.is((await ctl(s, 'initVcpu', 'w', '1')).code, 0);
    t.is((await ctl(s, 'releaseExit', 'w', '0')).out, 'no exit was held; a hold not yet caught is dropped\n');

    const page = (await ctl(s, '--json', 'events', '--vm', 'w')).out.trim().split('\n');
    const events = page.slice(0, -1).map(decodeEventLine);
    t.deepEqual(events.filter((e) => e.name === 'vm_paused' || e.name === 'vm_resumed').map((e) => e.name), ['vm_paused', 'vm_resumed']);
    t.true(events.some((e) => e.name === 'heki_configure' && e.fields.cr === 4));
    // `next` continues after everything examined: past the last event shown (PROTOCOL.md §6).
    t.true((JSON.parse(page.at(-1)!) as { next: number }).next > Number(events.at(-1)!.seq));

    guest.close();
    t.is((await ctl(s, 'destroyVm', 'w')).code, 0);
    const gone = await ctl(s, 'resetVm', 'w');
    t.is(gone.code, 1);
    t.regex(gone.err, /^pinbox ctl resetVm: no VM "w" .*\[not_found\]\n$/);
  });
});

test('ctl setCrFilter installs the filter whole or not at all; setCrExitReply answers its exits (docs/cr-filter.md)', async (t) => {
  await withServer({}, async (s) => {
    t.is((await ctl(s, 'createVm', 'c')).code, 0);
    const guest = await connect(s.guestUrl, { vm: 'c' });
    const cr0 = await guest.readCr(0);
    const exits = () => s.vmm.log.since(0n, 10_000).events.filter((e) => e.name === 'cr_filter_exit' && e.vm === 'c');
    t.true((await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP)).ok && (await guest.writeCrSafe(0, cr0)).ok, 'no filter: WP comes and goes unseen');
    t.is(exits().length, 0);

    t.is((await ctl(s, 'setCrFilter', 'c', '--cr0-mask', '0x10000', '--cr4-mask', String(X86_CR4_SMEP))).out, 'VM "c": CR filter installed (CR0 mask 0x10000, CR4 mask 0x100000)\n');
    // A policy without crFilter answers deny: #GP(0), CR0 unchanged, and the exit reached the VMM.
    t.like(await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP), { ok: false, fault: { vector: 13, errorCode: 0 } });
    t.is(await guest.readCr(0), cr0);
    t.like(exits()[0]?.fields, { cr: 0, old_value: cr0, new_value: cr0 & ~X86_CR0_WP, action: 'deny', source: 'policy' });

    // value=V: the write goes on with V instead of what the guest wrote.
    t.is((await ctl(s, 'setCrExitReply', 'c', `value=0x${(cr0 | X86_CR0_TS).toString(16)}`)).out, `VM "c": CR-filter exits answered with the value 0x${(cr0 | X86_CR0_TS).toString(16)}\n`);
    t.true((await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP)).ok);
    t.is(await guest.readCr(0), cr0 | X86_CR0_TS);
    t.is((await ctl(s, 'setCrExitReply', 'c', 'allow')).code, 0);
    t.true((await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP)).ok);
    t.is(await guest.readCr(0), cr0 & ~X86_CR0_WP);
    t.is((await ctl(s, 'setCrExitReply', 'c', 'policy')).out, 'VM "c": CR-filter exits answered by the policy\n');
    t.false((await guest.writeCrSafe(0, cr0)).ok, 'the policy\'s deny again');
    t.deepEqual(exits().map((e) => [e.fields.action, e.fields.source]), [['deny', 'policy'], ['value', 'control'], ['allow', 'control'], ['deny', 'policy']]);

    // KVM refuses an XCR0 mask (no XSETBV) and any flag: exit 1 with its errno, and the old filter stays.
    for (const extra of [['--xcr0-mask', '1'], ['--flags', '1']]) {
      const refused = await ctl(s, 'setCrFilter', 'c', '--cr0-mask', '0x8', ...extra);
      t.is(refused.code, 1, extra.join(' '));
      t.regex(refused.err, /^pinbox ctl setCrFilter: .*\[kvm_error EINVAL\]\n$/);
    }
    t.true((await guest.writeCrSafe(0, (cr0 & ~X86_CR0_WP) | X86_CR0_TS)).ok, 'TS (0x8) is not in the old filter: no exit');
    t.is(exits().length, 4);
    t.false((await guest.writeCrSafe(0, cr0)).ok, 'WP still is');
    t.is(exits().length, 5);

    // Mistakes on the command line: exit 2, naming what is wrong, and nothing sent.
    const usage = async (args: string[], re: RegExp) => {
      const r = await ctl(s, ...args);
      t.is(r.code, 2, args.join(' '));
      t.regex(r.err, re);
    };
    await usage(['setCrFilter', 'c', '--cr0-mask', 'wp'], /^pinbox ctl setCrFilter: --cr0-mask needs a 64-bit number, 0x… or decimal, got 'wp'/);
    await usage(['setCrFilter', 'c', '--cr4-mask', '0x10000000000000000'], /^pinbox ctl setCrFilter: --cr4-mask needs a 64-bit number, 0x… or decimal, got '0x10000000000000000'/);
    await usage(['setCrFilter', 'c', '--flags', '-1'], /--flags/);
    await usage(['setCrExitReply', 'c', 'maybe'], /^pinbox ctl setCrExitReply: REPLY is allow, deny, value=VALUE or policy; got 'maybe'/);
    await usage(['setCrExitReply', 'c', 'value=0x10000000000000000'], /value=0x10000000000000000 does not fit 64 bits/);
    t.is(exits().length, 5);

    t.is((await ctl(s, 'setCrFilter', 'c')).out, 'VM "c": CR filter cleared\n');
    t.true((await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP)).ok);
    t.is(exits().length, 5, 'a cleared filter exits nothing');
    guest.close();
  });
});

test('ctl holdExit holds the next exit until interrupted, printing the exit_held event; then releases it', async (t) => {
  await withServer({ msrFilter: { default: 'allow', deny: [{ msr: '0x10', access: 'read' }] }, msrHandlers: { '0x10': { read: '0x99' } } }, async (s) => {
    const guest = await connect(s.guestUrl);
    await guest.rdmsr(0xc0000080); // makes the VM
    const hold = startPinbox(['ctl', '--host', s.controlUrl, 'holdExit', 'default', '0']);
    await hold.waitFor(/holding the next user-space exit/);
    let answered = false;
    const read = guest.rdmsr(0x10).then((v) => ((answered = true), v));
    await hold.waitFor(/VM "default" vcpu 0 @0x[0-9a-f]+ exit_held reason=KVM_EXIT_X86_RDMSR exit_reason=29\n/);
    t.false(answered);
    const r = await hold.stop();
    t.is(r.code, 0, r.err);
    t.regex(r.out, /released: the exit goes on\n$/);
    t.is(await read, 0x99n);
    guest.close();
  });
});

test('events follows a server: by VM and name, text naming the VM or JSON lines, history with --since, until stopped', async (t) => {
  await withServer({}, async (s) => {
    const follow = startPinbox(['events', '--host', s.controlUrl, '--vm', 'later', '--name', 'heki_configure', '--name', 'heki_denial']);
    const json = startPinbox(['events', '--host', s.controlUrl, '--vm', 'later', '--json', '--completions', '--name', 'kvm_exit']);
    await until(() => s.vmm.log.since(0n, 10).events.filter((e) => e.name === 'control_connected').length === 2, 'both to say hello');
    // and subscribe: once the server holds the subscription, its answer is written before the close.
    await until(() => s.vmm.log.wants('vm_killed', 'a VM nobody made'), 'the follower to subscribe');
    const guest = await connect(s.guestUrl, { vm: 'later' });
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const cr4 = await guest.readCr(4);
    await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
    await follow.waitFor(/heki_denial/);
    const lines = follow.out().split('\n').filter((l) => l !== '');
    t.is(lines.length, 2);
    t.regex(lines[0]!, /^ +\d+ +\d+\.\d{6} VM "later" vcpu 0 @0x[0-9a-f]+ heki_configure reason=2\(CR4\) cr=4 cr_pinned=0x100000$/);
    t.regex(lines[1]!, new RegExp(`heki_denial reason=2\\(CR4\\) cr=4 cr_value=0x${(cr4 & ~X86_CR4_SMEP).toString(16)} path=exit action=log$`));
    await json.waitFor(/"exit_reason":"HLT"/);
    const exits = json.out().trim().split('\n').map(decodeEventLine);
    t.true(exits.every((e) => e.name === 'kvm_exit' && e.vm === 'later'));
    t.true(exits.some((e) => e.fields.exit_reason === 'HLT'), '--completions brings the operations\' own HLT');
    t.is((await follow.stop()).code, 0);
    t.is((await json.stop()).code, 0);

    const history = await pinbox(['events', '--host', s.controlUrl, '--since', '0', '--no-follow', '--vm', 'later', '--json']);
    t.is(history.code, 0, history.err);
    t.deepEqual(history.out.trim().split('\n').map((l) => decodeEventLine(l).name), ['vm_created', 'vcpu_init', 'guest_connected', 'heki_configure', 'heki_denial']);
    guest.close();
  });
});

test('events ends with exit 1, saying so, when the server closes the connection', async (t) => {
  let follow: ReturnType<typeof startPinbox> | undefined;
  await withServer({}, async (s) => {
    follow = startPinbox(['events', '--host', s.controlUrl]);
    const epoch = s.vmm.log.interestEpoch;
    await until(() => s.vmm.log.since(0n, 10).events.some((e) => e.name === 'control_connected'), 'the follower to say hello');
    // and subscribe: once the server holds the subscription (the log's interest changed), its
    // answer is written before the close — a fixed delay was outrun on a loaded machine.
    await until(() => s.vmm.log.interestEpoch !== epoch, 'the follower to subscribe');
  });
  const r = await follow!.done;
  t.is(r.code, 1);
  t.regex(r.err, /the server at unix:.* closed the connection\n$/);
});

test('conform --host takes the token from PATH.token when no token option is given', async (t) => {
  await withServer({}, async (s) => {
    const r = await pinbox(['conform', '--host', s.controlUrl, '--reporter', 'tap', 'test/conformance/heki/version-query.json']);
    t.is(r.code, 0, r.out + r.err);
    t.regex(r.out, /^ok 1 /m);
    const token = readFileSync(s.server.tokenFile!, 'utf8').trim();
    t.is(token, s.server.token!);
  });
});
