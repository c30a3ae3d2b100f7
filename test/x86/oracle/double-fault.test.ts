/**
 * A fault while delivering a fault (SDM vol. 3A §6.15, tables 6-4 and 6-5; interrupt 8):
 * contributory + contributory and #PF + (contributory or #PF) become #DF with error code 0;
 * any other pair is handled serially — the second exception is delivered; a fault while
 * delivering #DF shuts the processor down (the `triple_fault` intercept).
 *
 * The matrix: first exception (#DE, #BP by INT3, #UD, #GP, #SS, #PF) × how its delivery fails ×
 * CPL 0/3 = 6 × 5 × 2 = 60 cases. A delivery fails through the first exception's own gate (not
 * present → #NP, selector of a data segment → #GP, non-canonical target → #GP) or its stack (not
 * present → #PF, non-canonical IST → #SS).
 *
 * "#GP inside a #GP handler → #DF" (the phrase) holds only for a #GP raised *during the
 * delivery* of a #GP. A #GP raised by the handler's own code, after delivery completed, is a new
 * exception delivered normally — and so is a fault raised by the #DF handler's code: neither is a
 * double or triple fault. Both readings are tested below, each under its own name.
 *
 * What the SDM leaves undefined is not asserted: the CS:RIP a #DF pushes (and the rest of its
 * frame beyond the error code), and CR2 after a #DF. Where SDM editions give different error
 * codes — #GP(0) or #GP(EXT) for a non-canonical gate target, #SS(0) or #SS(EXT) for a
 * non-canonical stack — both are accepted.
 */
import test from 'ava';
import {
  DF_VECTOR, GP_VECTOR, NP_VECTOR, PF_VECTOR, PFERR_WRITE, SS_VECTOR, X86_EFLAGS_AF, X86_EFLAGS_CF,
  X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF, X86_EFLAGS_ZF,
} from '../../../protocol/abi.js';
import { IDT, KERNEL_CS, KERNEL_DS, USER_CS, USER_DS } from '../harness/machine.js';
import { expectedDelivery, idtErrorCode, secondException, selectorErrorCode } from './delivery-model.js';
import {
  ENTRY_RFLAGS, handlerOf, IdtRig, istTop, NON_CANONICAL, STACKS, TRIGGERS, type EventName, type GateSpec,
} from './idt-rig.js';

type Mechanism = 'gate not present' | 'gate selector is a data segment' | 'gate target non-canonical'
  | 'stack not present' | 'IST stack non-canonical';
const MECHANISMS: Mechanism[] = [
  'gate not present', 'gate selector is a data segment', 'gate target non-canonical', 'stack not present', 'IST stack non-canonical',
];
const FIRSTS: EventName[] = ['#DE', '#BP', '#UD', '#GP', '#SS', '#PF'];
/** Top of the not-present null page: the first push goes to 0xff8. */
const NOT_PRESENT_STACK = 0x1000n;
const GOOD: GateSpec = { dpl: 3, ist: 2 };
const VECTORS = [0, 3, 6, DF_VECTOR, NP_VECTOR, SS_VECTOR, GP_VECTOR, PF_VECTOR];

/** Gate spec and TSS changes that make a delivery through `vector` fault as `m` says. */
function breakDelivery(rig: IdtRig, vector: number, m: Mechanism, cpl: 0 | 3, ist: number): void {
  const tss = rig.readTss();
  switch (m) {
    case 'gate not present': rig.setGate(vector, { ...GOOD, present: false }); break;
    case 'gate selector is a data segment': rig.setGate(vector, { ...GOOD, selector: KERNEL_DS }); break;
    case 'gate target non-canonical': rig.setGate(vector, { ...GOOD, target: NON_CANONICAL }); break;
    case 'stack not present':
      if (vector === DF_VECTOR) {
        // #DF's gate names an IST here (the interrupted code's stack being fine).
        rig.setGate(vector, { ...GOOD, ist });
        tss.ist[ist - 1] = NOT_PRESENT_STACK;
      } else {
        // No IST: from CPL3 the stack is TSS.RSP0; at CPL0 it is the interrupted RSP, which the
        // caller points at the same page.
        rig.setGate(vector, { ...GOOD, ist: 0 });
        if (cpl === 3) tss.rsp0 = NOT_PRESENT_STACK;
      }
      break;
    case 'IST stack non-canonical':
      rig.setGate(vector, { ...GOOD, ist });
      tss.ist[ist - 1] = NON_CANONICAL;
      break;
  }
  rig.setTss(tss.rsp0, tss.ist);
}

/** The second exception `m` raises while delivering `first`, with its acceptable error codes. */
function secondOf(m: Mechanism, first: EventName): { vector: number; codes: number[]; cr2?: bigint } {
  // §6.13: EXT is set unless the event being delivered is INT n, INT3 or INTO.
  const ext = !TRIGGERS[first].software;
  const e = ext ? 1 : 0;
  switch (m) {
    case 'gate not present': return { vector: NP_VECTOR, codes: [idtErrorCode(TRIGGERS[first].vector, ext)] };
    case 'gate selector is a data segment': return { vector: GP_VECTOR, codes: [selectorErrorCode(KERNEL_DS, ext)] };
    case 'gate target non-canonical': return { vector: GP_VECTOR, codes: [0, e] };
    // A supervisor-mode (implicit) write to a not-present page: W only; the first push is SS's.
    case 'stack not present': return { vector: PF_VECTOR, codes: [PFERR_WRITE], cr2: NOT_PRESENT_STACK - 8n };
    case 'IST stack non-canonical': return { vector: SS_VECTOR, codes: [0, e] };
  }
}

function prepare(rig: IdtRig, cpl: 0 | 3): void {
  for (const v of VECTORS) rig.setGate(v, GOOD);
  rig.setTss(STACKS.kernel, [istTop(1), istTop(2), istTop(3), istTop(4)]);
  rig.m.cpu.exceptionBitmap = 0;
  rig.enter(cpl, cpl === 3 ? STACKS.user : STACKS.kernel);
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

test('double-fault matrix: first exception × failing delivery × CPL follows table 6-5', (t) => {
  const rig = new IdtRig();
  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  for (const first of FIRSTS) for (const m of MECHANISMS) for (const cpl of [0, 3] as const) {
    const name = `${first} at CPL${cpl}, ${m}`;
    const trig = TRIGGERS[first];
    prepare(rig, cpl);
    breakDelivery(rig, trig.vector, m, cpl, 3);
    // At CPL0 with no stack switch the interrupted RSP is the stack: make it the not-present one.
    const rsp = cpl === 0 && m === 'stack not present' ? NOT_PRESENT_STACK : cpl === 3 ? STACKS.user : STACKS.kernel;
    rig.m.cpu.writeGpr(4, rsp);
    const second = secondOf(m, first);
    const outcome = secondException(trig.vector, second.vector);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    const i = rig.trigger(trig, cpl);
    const cpu = rig.m.cpu;
    const delivered = outcome === 'double-fault' ? DF_VECTOR : second.vector;
    if (i.kind !== 'hlt' || cpu.getRip() !== BigInt(handlerOf(delivered))) {
      failures.push(`${name}: expected ${outcome} → vector ${delivered}'s handler, got ${JSON.stringify(i)} at ${hex(cpu.getRip())}`);
      continue;
    }
    // Both are delivered through a good gate on IST2, so the frame (with its error code) is at
    // IST2's top minus 48.
    if (cpu.readGpr(4) !== istTop(2) - 48n) failures.push(`${name}: RSP ${hex(cpu.readGpr(4))}, expected IST2 − 48`);
    const frame = rig.frame(6);
    if (outcome === 'double-fault') {
      if (frame[0] !== 0n) failures.push(`${name}: #DF error code ${hex(frame[0]!)}, expected 0`);
      continue;
    }
    // Serial: the second is a fault on the first's instruction, in the interrupted context.
    const want = expectedDelivery({
      kind: 'fault', errorCode: second.codes[0], gateType: 0xe, ist: 2, cpl,
      returnRip: BigInt(rig.triggerAddress(cpl)), rsp, rflags: ENTRY_RFLAGS,
      cs: cpl === 3 ? USER_CS : KERNEL_CS, ss: cpl === 3 ? USER_DS : KERNEL_DS,
      tss: { rsp0: 0n, ist: [0n, istTop(2)] }, handlerCs: KERNEL_CS,
    });
    if (!second.codes.map(BigInt).includes(frame[0]!)) {
      failures.push(`${name}: error code ${hex(frame[0]!)}, expected one of ${second.codes.map(hex).join(', ')}`);
    }
    if (frame.slice(1).some((q, k) => q !== want.frame[k + 1])) {
      failures.push(`${name}: frame [${frame.map(hex).join(', ')}], expected [${want.frame.map(hex).join(', ')}]`);
    }
    if (second.cr2 !== undefined && cpu.readCr(2) !== second.cr2) failures.push(`${name}: CR2 ${hex(cpu.readCr(2))}, expected ${hex(second.cr2)}`);
  }
  t.log([...outcomes].map(([k, n]) => `${k}×${n}`).join(' '));
  t.deepEqual(failures, []);
  t.deepEqual(Object.fromEntries(outcomes), { serial: 26, 'double-fault': 34 }, 'table 6-5 over the matrix: 13 serial and 17 double faults per CPL');
});

/** What `m` raises while delivering the #DF (a hardware event: EXT set). */
function secondOfDoubleFault(m: Mechanism): { vector: number; codes: number[] } {
  switch (m) {
    case 'gate not present': return { vector: NP_VECTOR, codes: [idtErrorCode(DF_VECTOR, true)] };
    case 'gate selector is a data segment': return { vector: GP_VECTOR, codes: [selectorErrorCode(KERNEL_DS, true)] };
    case 'gate target non-canonical': return { vector: GP_VECTOR, codes: [0, 1] };
    case 'stack not present': return { vector: PF_VECTOR, codes: [PFERR_WRITE] };
    case 'IST stack non-canonical': return { vector: SS_VECTOR, codes: [0, 1] };
  }
}

test('a fault while delivering #DF is a triple fault, whatever breaks the #DF delivery; the intercept tells the chain', (t) => {
  const rig = new IdtRig();
  for (const m of MECHANISMS) {
    for (const [first, breakFirst] of [['#GP', 'gate not present'], ['#PF', 'stack not present']] as const) {
      prepare(rig, 0);
      breakDelivery(rig, TRIGGERS[first].vector, breakFirst, 0, 3);
      breakDelivery(rig, DF_VECTOR, m, 0, 4);
      rig.m.cpu.writeGpr(4, breakFirst === 'stack not present' ? NOT_PRESENT_STACK : STACKS.kernel);
      const what = `${first} (${breakFirst}) → #DF, whose ${m}`;
      const i = rig.trigger(TRIGGERS[first], 0);
      if (i.kind !== 'triple_fault') {
        t.fail(`${what}: ${JSON.stringify(i)}`);
        continue;
      }
      // §6.15: the first exception, what its delivery raised, the #DF (error code 0) they make,
      // and what the #DF's delivery raised — all at the trigger's RIP, each with its gate.
      const second = secondOf(breakFirst, first);
      const third = secondOfDoubleFault(m);
      t.deepEqual(i.chain.map((e) => e.vector), [TRIGGERS[first].vector, second.vector, DF_VECTOR, third.vector], what);
      t.true(second.codes.includes(i.chain[1]!.errorCode!), `${what}: second error code ${i.chain[1]!.errorCode}`);
      t.is(i.chain[2]!.errorCode, 0, `${what}: #DF's error code`);
      t.true(third.codes.includes(i.chain[3]!.errorCode!), `${what}: last error code ${i.chain[3]!.errorCode}`);
      t.true(i.chain.every((e) => e.rip === BigInt(rig.triggerAddress(0))), `${what}: RIP of each`);
      for (const e of i.chain) {
        t.is(e.gate.kind, 'gate', `${what}: vector ${e.vector}'s gate is within the IDT`);
        if (e.gate.kind === 'gate') t.is(e.gate.address, BigInt(IDT + 16 * e.vector));
      }
      const df = i.chain[2]!.gate;
      if (df.kind === 'gate') t.is(df.present, m !== 'gate not present', `${what}: #DF gate's P bit`);
      // A #PF of a delivery faults on its first push (SS's slot); the first exception's own #PF is the trigger's.
      for (const e of i.chain.slice(1)) if (e.vector === PF_VECTOR) t.is(e.address, NOT_PRESENT_STACK - 8n, `${what}: #PF address`);
      if (first === '#PF') t.is(typeof i.chain[0]!.address, 'bigint', `${what}: the first #PF has its address`);
    }
  }
});

test('the exception bitmap sees the #DF itself, with error code 0, before its delivery', (t) => {
  const rig = new IdtRig();
  prepare(rig, 0);
  breakDelivery(rig, GP_VECTOR, 'gate not present', 0, 3);
  rig.m.cpu.exceptionBitmap = 1 << DF_VECTOR;
  t.deepEqual(rig.trigger(TRIGGERS['#GP'], 0), { kind: 'exception', vector: DF_VECTOR, errorCode: 0 });
  t.is(rig.m.cpu.readGpr(4), STACKS.kernel, 'nothing pushed');
});

test('IDT limit chains: #PF beyond the limit → #GP → #DF; #UD beyond it → #GP beyond it → #DF beyond it → triple fault', (t) => {
  const rig = new IdtRig();
  const limit = (l: number) => rig.m.cpu.setSregs({ ...rig.m.cpu.getSregs(), idt: { base: BigInt(IDT), limit: l } });
  prepare(rig, 0);
  limit(PF_VECTOR * 16 + 7); // #DF's and #GP's gates still fit, #PF's does not
  t.deepEqual(rig.trigger(TRIGGERS['#PF'], 0), { kind: 'hlt' });
  t.is(rig.m.cpu.getRip(), BigInt(handlerOf(DF_VECTOR)), '#PF + #GP(14*8+3) is a double fault');
  t.is(rig.frame(1)[0], 0n);

  prepare(rig, 0);
  limit(6 * 16 + 7); // no gate from #UD's up fits
  const i = rig.trigger(TRIGGERS['#UD'], 0);
  t.is(i.kind, 'triple_fault');
  if (i.kind !== 'triple_fault') return;
  // #UD (benign), so the #GP its delivery raises is delivered serially; that delivery raises
  // another #GP (contributory after contributory): #DF(0), whose delivery raises the last #GP.
  // Every gate lies beyond the limit.
  t.deepEqual(i.chain.map((e) => [e.vector, e.errorCode]), [
    [6, undefined], [GP_VECTOR, idtErrorCode(6, true)], [GP_VECTOR, idtErrorCode(GP_VECTOR, true)], [DF_VECTOR, 0],
    [GP_VECTOR, idtErrorCode(DF_VECTOR, true)],
  ]);
  t.true(i.chain.every((e) => e.gate.kind === 'beyond-limit'));
});

test('a #GP raised by the #GP handler\'s code is a new #GP, not a #DF', (t) => {
  const rig = new IdtRig();
  prepare(rig, 0);
  rig.setGate(GP_VECTOR, { ist: 0 });
  const h = handlerOf(GP_VECTOR);
  // inc r15; cmp r15, 1; jne +3; mov rax, [rbx] (RBX non-canonical: #GP); hlt
  rig.m.memory.writeBytes(h, Uint8Array.of(0x49, 0xff, 0xc7, 0x49, 0x83, 0xff, 0x01, 0x75, 0x03, 0x48, 0x8b, 0x03, 0xf4));
  rig.m.cpu.writeGpr(15, 0n);
  t.deepEqual(rig.trigger(TRIGGERS['#GP'], 0), { kind: 'hlt' });
  t.is(rig.m.cpu.getRip(), BigInt(h + 12), 'halted in the #GP handler, not the #DF handler');
  t.is(rig.m.cpu.readGpr(15), 2n, 'the #GP handler ran twice');
  const firstFrame = expectedDelivery({
    kind: 'fault', errorCode: 0, gateType: 0xe, ist: 0, cpl: 0, returnRip: BigInt(rig.triggerAddress(0)),
    rsp: STACKS.kernel, rflags: ENTRY_RFLAGS, cs: KERNEL_CS, ss: KERNEL_DS, tss: rig.readTss(), handlerCs: KERNEL_CS,
  });
  // CMP r15, 1 with r15 = 1 leaves ZF and PF set and CF, AF, SF, OF clear (SDM vol. 2 CMP).
  const ARITH = X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF;
  const afterCmp = (firstFrame.rflags & ~ARITH) | X86_EFLAGS_ZF | X86_EFLAGS_PF;
  const secondFrame = expectedDelivery({
    kind: 'fault', errorCode: 0, gateType: 0xe, ist: 0, cpl: 0, returnRip: BigInt(h + 9),
    rsp: firstFrame.rsp, rflags: afterCmp, cs: KERNEL_CS, ss: KERNEL_DS, tss: rig.readTss(), handlerCs: KERNEL_CS,
  });
  t.is(rig.m.cpu.readGpr(4), secondFrame.rsp, 'the second frame is pushed below the first');
  t.deepEqual(rig.frame(12), [...secondFrame.frame, ...firstFrame.frame]);
});

test('a fault raised by the #DF handler\'s code is delivered normally, not a triple fault', (t) => {
  const rig = new IdtRig();
  prepare(rig, 0);
  breakDelivery(rig, GP_VECTOR, 'gate not present', 0, 3);
  rig.setGate(6, { ist: 0 }); // #UD on the #DF handler's own stack
  rig.m.memory.writeBytes(handlerOf(DF_VECTOR), Uint8Array.of(0x0f, 0x0b)); // ud2
  t.deepEqual(rig.trigger(TRIGGERS['#GP'], 0), { kind: 'hlt' });
  t.is(rig.m.cpu.getRip(), BigInt(handlerOf(6)), '#UD delivered');
  const f = rig.frame(2);
  t.deepEqual(f, [BigInt(handlerOf(DF_VECTOR)), BigInt(KERNEL_CS)], 'from the #DF handler\'s UD2');
  t.is(rig.m.cpu.readGpr(4), istTop(2) - 48n - 40n, 'below the #DF frame on IST2');
});

test('a #DF from CPL3 through a gate without IST switches to TSS.RSP0 like any other event', (t) => {
  const rig = new IdtRig();
  prepare(rig, 3);
  breakDelivery(rig, GP_VECTOR, 'gate not present', 3, 3);
  rig.setGate(DF_VECTOR, { ist: 0 });
  rig.setTss(STACKS.kernel - 0x8n, [istTop(1), istTop(2)]);
  t.deepEqual(rig.trigger(TRIGGERS['#GP'], 3), { kind: 'hlt' });
  t.is(rig.m.cpu.getRip(), BigInt(handlerOf(DF_VECTOR)));
  t.is(rig.m.cpu.readGpr(4), STACKS.kernel - 0x10n - 48n, 'RSP0, aligned down, minus the frame with its error code');
  t.is(rig.frame(1)[0], 0n, 'error code 0 (the rest of a #DF frame describes an undefined state)');
  t.is(rig.m.cpu.getSregs().ss.selector, 0, 'SS is NULL after the CPL change');
});
