/**
 * Exception and interrupt delivery through the 64-bit IDT (issue 3, item 8), against
 * delivery-model.ts: every combination of event (#DE, #BP by INT3, #UD, #GP(0), #SS(0), #PF, INT
 * 0x40) × CPL 0/3 × interrupt/trap gate × IST 0/2 × gate DPL 0/3 × aligned/misaligned stack —
 * 7 × 2^5 = 224 cases, each checking the handler reached, CPL, RSP (stack choice and 16-byte
 * alignment), the whole pushed frame (SS, RSP, RFLAGS with RF for faults, CS, RIP, error code),
 * RFLAGS in the handler (TF/NT/RF cleared, IF only by an interrupt gate), CS, SS (NULL after a
 * CPL change) and CR2 for #PF. Then the IDT's own faults (not-present gate, IDT limit, bad gate
 * type, a gate to a less privileged code segment) with their selector error codes, and IRETQ
 * back to the interrupted context.
 */
import test from 'ava';
import { BP_VECTOR, GP_VECTOR, NP_VECTOR, UD_VECTOR, X86_EFLAGS_RF } from '../../../protocol/abi.js';
import { IDT, KERNEL_CS, KERNEL_DS, USER_CS, USER_DS } from '../harness/machine.js';
import { expectedDelivery, idtErrorCode, selectorErrorCode } from './delivery-model.js';
import {
  ENTRY_RFLAGS, EVENT_NAMES, handlerOf, IdtRig, INTERRUPT_GATE, istTop, STACKS, TRAP_GATE, TRIGGERS,
  UNMAPPED, type EventName, type Trigger,
} from './idt-rig.js';

interface DeliveryCase {
  event: EventName;
  cpl: 0 | 3;
  gateType: number;
  ist: 0 | 2;
  gateDpl: 0 | 3;
  misaligned: boolean;
}

function* cases(): Generator<DeliveryCase> {
  for (const event of EVENT_NAMES) for (const cpl of [0, 3] as const) for (const gateType of [INTERRUPT_GATE, TRAP_GATE])
    for (const ist of [0, 2] as const) for (const gateDpl of [0, 3] as const) for (const misaligned of [false, true]) {
      yield { event, cpl, gateType, ist, gateDpl, misaligned };
    }
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function describe(c: DeliveryCase): string {
  return `${c.event} CPL${c.cpl} ${c.gateType === INTERRUPT_GATE ? 'interrupt' : 'trap'} gate DPL${c.gateDpl} IST${c.ist}` +
    `${c.misaligned ? ' misaligned stack' : ''}`;
}

function runDeliveryCase(rig: IdtRig, c: DeliveryCase): string[] {
  const t = TRIGGERS[c.event];
  const problems: string[] = [];
  // RSPs 4 bytes off a 16-byte boundary must be aligned down by delivery (§6.14.2).
  const off = c.misaligned ? 0x24n : 0x20n;
  for (const v of [t.vector, GP_VECTOR]) rig.setGate(v, { type: c.gateType, dpl: c.gateDpl, ist: c.ist });
  rig.setTss(STACKS.kernel - off, [istTop(1), istTop(2) - off]);
  const rsp = (c.cpl === 3 ? STACKS.user : STACKS.kernel) - off;
  rig.enter(c.cpl, rsp);
  const at = BigInt(rig.triggerAddress(c.cpl));

  // §6.12.1.1: the DPL check applies to INT n and INT3 only, and fails as #GP(vector*8+2), EXT=0.
  const dplFault = t.software && c.gateDpl < c.cpl;
  const vector = dplFault ? GP_VECTOR : t.vector;
  const kind = dplFault ? 'fault' : t.kind;
  const errorCode = dplFault ? idtErrorCode(t.vector, false) : t.errorCode?.(c.cpl);
  const want = expectedDelivery({
    kind, errorCode, gateType: c.gateType, ist: c.ist, cpl: c.cpl,
    returnRip: kind === 'fault' ? at : at + BigInt(t.bytes.length),
    rsp, rflags: ENTRY_RFLAGS,
    cs: c.cpl === 3 ? USER_CS : KERNEL_CS,
    ss: c.cpl === 3 ? USER_DS : KERNEL_DS,
    tss: rig.readTss(),
    handlerCs: KERNEL_CS,
  });

  const cpu = rig.m.cpu;
  const i = rig.trigger(t, c.cpl);
  if (i.kind !== 'hlt' || cpu.getRip() !== BigInt(handlerOf(vector))) {
    problems.push(`expected vector ${vector}'s handler, got ${JSON.stringify(i)} at ${hex(cpu.getRip())}`);
    return problems.map((p) => `${describe(c)} — ${p}`);
  }
  const s = cpu.getSregs();
  if (cpu.cpl !== 0) problems.push(`CPL ${cpu.cpl}`);
  if (cpu.readGpr(4) !== want.rsp) problems.push(`RSP ${hex(cpu.readGpr(4))}, expected ${hex(want.rsp)}`);
  const frame = rig.frame(want.frame.length);
  if (frame.some((q, k) => q !== want.frame[k])) {
    problems.push(`frame [${frame.map(hex).join(', ')}], expected [${want.frame.map(hex).join(', ')}]`);
  }
  if (cpu.getRflags() !== BigInt(want.rflags)) problems.push(`RFLAGS ${hex(cpu.getRflags())}, expected ${hex(want.rflags)}`);
  if (s.cs.selector !== want.cs) problems.push(`CS ${hex(s.cs.selector)}, expected ${hex(want.cs)}`);
  if (s.ss.selector !== want.ss) problems.push(`SS ${hex(s.ss.selector)}, expected ${hex(want.ss)}`);
  if (c.event === '#PF' && s.cr2 !== UNMAPPED) problems.push(`CR2 ${hex(s.cr2)}, expected ${hex(UNMAPPED)}`);
  return problems.map((p) => `${describe(c)} — ${p}`);
}

const ALL = [...cases()];

test(`delivery matrix: ${ALL.length} cases match the SDM model (handler, stack, frame, RFLAGS, selectors, CR2)`, (t) => {
  const rig = new IdtRig();
  const failures = ALL.flatMap((c) => runDeliveryCase(rig, c));
  t.is(ALL.length, 7 * 32);
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
});

/** Runs `event` at `cpl` and returns the delivered vector and the error code on the stack. */
function deliveredWithCode(rig: IdtRig, event: EventName | Trigger, cpl: 0 | 3): { vector: number; errorCode: bigint; rip: bigint } {
  const i = rig.trigger(typeof event === 'string' ? TRIGGERS[event] : event, cpl);
  const rip = rig.m.cpu.getRip();
  const vector = i.kind === 'hlt' ? Number(rip - BigInt(handlerOf(0))) / 16 : -1;
  return { vector, errorCode: rig.frame(1)[0]!, rip: rig.frame(2)[1]! };
}

test('IDT faults: not-present gate #NP, IDT limit, bad gate type and a less privileged target #GP, with selector error codes', (t) => {
  const rig = new IdtRig();
  const fresh = () => {
    for (const v of [UD_VECTOR, 0x40, GP_VECTOR, NP_VECTOR]) rig.setGate(v, { ist: 2, dpl: 3 });
    rig.setTss(STACKS.kernel, [istTop(1), istTop(2)]);
  };
  const cases: [string, () => void, EventName, 0 | 3, number, number][] = [
    // §6.13: EXT = 1 while delivering a hardware exception, 0 for INT n; IDT = 1 (bit 1).
    ['#UD through a not-present gate', () => rig.setGate(UD_VECTOR, { present: false, ist: 2 }), '#UD', 0, NP_VECTOR, idtErrorCode(UD_VECTOR, true)],
    ['INT 0x40 through a not-present gate', () => rig.setGate(0x40, { present: false, dpl: 3 }), 'INT 0x40', 0, NP_VECTOR, idtErrorCode(0x40, false)],
    // The DPL check comes before the present check (INT n pseudo-code).
    ['CPL3 INT 0x40 through a not-present DPL0 gate', () => rig.setGate(0x40, { present: false, dpl: 0 }), 'INT 0x40', 3, GP_VECTOR, idtErrorCode(0x40, false)],
    // The whole 16-byte gate must lie within the limit (hardware exceptions beyond it: double-fault.test.ts).
    ['INT 0x40 beyond the IDT limit (the limit covers half its gate)', () => rig.m.cpu.setSregs({ ...rig.m.cpu.getSregs(), idt: { base: BigInt(IDT), limit: 0x40 * 16 + 7 } }), 'INT 0x40', 0, GP_VECTOR, idtErrorCode(0x40, false)],
    ['#UD through a gate of type 0xC (a call gate is not an IDT gate in 64-bit mode)', () => rig.setGate(UD_VECTOR, { type: 0xc, ist: 2 }), '#UD', 0, GP_VECTOR, idtErrorCode(UD_VECTOR, true)],
    ['#UD through a gate to a data segment', () => rig.setGate(UD_VECTOR, { selector: KERNEL_DS, ist: 2 }), '#UD', 0, GP_VECTOR, selectorErrorCode(KERNEL_DS, true)],
    ['#UD at CPL0 through a gate to the DPL3 code segment', () => rig.setGate(UD_VECTOR, { selector: USER_CS, ist: 2 }), '#UD', 0, GP_VECTOR, selectorErrorCode(USER_CS, true)],
  ];
  for (const [name, breakIt, event, cpl, vector, code] of cases) {
    fresh();
    rig.enter(cpl, cpl === 3 ? STACKS.user : STACKS.kernel);
    breakIt();
    const got = deliveredWithCode(rig, event, cpl);
    t.deepEqual(got, { vector, errorCode: BigInt(code), rip: BigInt(rig.triggerAddress(cpl)) }, name);
  }
});

test('IRETQ returns to the interrupted context: INT3 from CPL3, #UD skipped by its handler, #GP with an error code', (t) => {
  const rig = new IdtRig();
  const mem = rig.m.memory;
  const cpu = rig.m.cpu;
  // INT3 from CPL3 through a DPL3 trap gate; the handler is a bare IRETQ; CPUID follows INT3.
  rig.setGate(3, { type: TRAP_GATE, dpl: 3 });
  mem.writeBytes(handlerOf(3), Uint8Array.of(0x48, 0xcf));
  rig.setTss(STACKS.kernel, []);
  rig.enter(3, STACKS.user - 0x18n);
  t.deepEqual(rig.trigger(TRIGGERS['#BP'], 3), { kind: 'cpuid', leaf: 1, subleaf: 0 });
  const s = cpu.getSregs();
  t.is(cpu.cpl, 3);
  t.is(cpu.getRip(), BigInt(rig.triggerAddress(3) + 1));
  t.is(cpu.readGpr(4), STACKS.user - 0x18n, 'the user RSP, unaligned as it was');
  t.is(cpu.getRflags(), BigInt(ENTRY_RFLAGS), 'RFLAGS as pushed (RF was 0 for a trap)');
  t.deepEqual([s.cs.selector, s.ss.selector, s.cs.dpl, s.ss.dpl], [USER_CS, USER_DS, 3, 3]);

  // #UD from CPL3: add qword [rsp], 2; iretq — resumes after the two-byte UD2, RF from the frame.
  rig.setGate(UD_VECTOR, { dpl: 0 });
  mem.writeBytes(handlerOf(UD_VECTOR), Uint8Array.of(0x48, 0x83, 0x04, 0x24, 0x02, 0x48, 0xcf));
  rig.enter(3, STACKS.user);
  t.deepEqual(rig.trigger(TRIGGERS['#UD'], 3), { kind: 'cpuid', leaf: 1, subleaf: 0 });
  t.is(cpu.getRip(), BigInt(rig.triggerAddress(3) + 2));
  t.is(cpu.cpl, 3);
  // RF was 1 in the frame; whether it still reads 1 at the intercepted CPUID is not asserted.
  t.is(cpu.getRflags() & ~BigInt(X86_EFLAGS_RF), BigInt(ENTRY_RFLAGS), 'RFLAGS restored');

  // #GP(0) at CPL0: add rsp, 8 (the error code); add qword [rsp], 3; iretq.
  rig.setGate(GP_VECTOR, { ist: 2 });
  mem.writeBytes(handlerOf(GP_VECTOR), Uint8Array.of(0x48, 0x83, 0xc4, 0x08, 0x48, 0x83, 0x04, 0x24, 0x03, 0x48, 0xcf));
  rig.setTss(STACKS.kernel, [istTop(1), istTop(2)]);
  rig.enter(0, STACKS.kernel - 0x8n);
  t.deepEqual(rig.trigger(TRIGGERS['#GP'], 0), { kind: 'cpuid', leaf: 1, subleaf: 0 });
  t.is(cpu.getRip(), BigInt(rig.triggerAddress(0) + 3));
  t.is(cpu.readGpr(4), STACKS.kernel - 0x8n, 'back on the interrupted stack, off the IST');
  t.is(cpu.getSregs().ss.selector, KERNEL_DS);
});

test('INT 3 written as CD 03 is INT n: its gate DPL is checked too; INTO is invalid in 64-bit mode', (t) => {
  const rig = new IdtRig();
  rig.setTss(STACKS.kernel, [istTop(1), istTop(2)]);
  for (const v of [BP_VECTOR, UD_VECTOR, GP_VECTOR]) rig.setGate(v, { dpl: 0 });
  rig.enter(3, STACKS.user);
  const int3 = { ...TRIGGERS['#BP'], bytes: [0xcd, 0x03] };
  t.deepEqual(deliveredWithCode(rig, { ...int3 }, 3), { vector: GP_VECTOR, errorCode: BigInt(idtErrorCode(BP_VECTOR, false)), rip: BigInt(rig.triggerAddress(3)) });
  rig.enter(0, STACKS.kernel);
  t.deepEqual(rig.trigger({ ...TRIGGERS['#UD'], bytes: [0xce] }, 0), { kind: 'hlt' });
  t.is(rig.m.cpu.getRip(), BigInt(handlerOf(UD_VECTOR)), 'INTO (CE): #UD');
});
