/**
 * Decoder differential test against iced-x86 (docs/x86-model.md §2, oracle contract): over
 * structured and random byte strings,
 *   - iced invalid            → we decode nothing (#UD; #GP for more than 15 bytes),
 *   - iced valid, in our set  → same length, mnemonic, operands, LOCK and REP,
 *   - iced valid, not in set  → #UD, and the encoding belongs to a documented unsupported family.
 * Every entry of the instruction table must be exercised by some agreeing case.
 */
import test from 'ava';
import { decode, OPCODE_TABLE, type Insn, type OpcodeEntry } from '../../../host/index.js';
import { compareWithIced } from './iced-oracle.js';
import { unsupportedFamily } from './unsupported.js';
import { xorshift } from '../harness/prng.js';

const LEGACY_PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65];
const isUnsupported = (code: string): boolean => unsupportedFamily(code) !== undefined;

interface Tally {
  cases: number;
  agreeValid: number;
  unsupported: Map<string, number>;
  mismatches: string[];
  covered: Set<OpcodeEntry>;
}

function run(t: Tally, bytes: Uint8Array): void {
  t.cases++;
  const v = compareWithIced(bytes, isUnsupported);
  if (v.kind === 'mismatch') {
    if (t.mismatches.length < 40) t.mismatches.push(v.detail);
  } else if (v.kind === 'unsupported') {
    const fam = unsupportedFamily(v.code)!;
    t.unsupported.set(fam, (t.unsupported.get(fam) ?? 0) + 1);
  } else {
    const ours = decode(bytes, 0, bytes.length);
    if (typeof ours !== 'number') {
      t.agreeValid++;
      t.covered.add((ours as Insn).entry);
    }
  }
}

function randomTail(rnd: () => number, bytes: Uint8Array, from: number): void {
  for (let k = from; k < bytes.length; k++) bytes[k] = rnd() & 0xff;
}

function newTally(): Tally {
  return { cases: 0, agreeValid: 0, unsupported: new Map(), mismatches: [], covered: new Set() };
}

test('every opcode × every ModRM byte, with prefix and REX variants', (t) => {
  const rnd = xorshift(0x5eed);
  const tally = newTally();
  const variants: number[][] = [[], [0x66], [0x48], [0x41], [0x4c], [0xf3], [0xf2], [0x67], [0x40]];
  for (let map = 0; map < 2; map++) {
    for (let op = 0; op < 256; op++) {
      for (let m = 0; m < 256; m++) {
        const bytes = new Uint8Array(16);
        randomTail(rnd, bytes, 0);
        const pre = variants[(op + m) % variants.length]!;
        let p = 0;
        for (const b of pre) bytes[p++] = b;
        if (map === 1) bytes[p++] = 0x0f;
        bytes[p++] = op;
        bytes[p++] = m;
        run(tally, bytes);
      }
    }
  }
  t.deepEqual(tally.mismatches, [], `${tally.mismatches.length} mismatches`);
  t.true(tally.cases >= 131072);
  t.log(`${tally.cases} cases, ${tally.agreeValid} valid and agreeing, unsupported: ${JSON.stringify([...tally.unsupported])}`);
});

test('prefix soup and REX combinations before table opcodes and random bytes', (t) => {
  const rnd = xorshift(0xc0ffee);
  const tally = newTally();
  const entries = OPCODE_TABLE.filter((e) => !e.unsupported);
  for (let n = 0; n < 40000; n++) {
    const bytes = new Uint8Array(16);
    randomTail(rnd, bytes, 0);
    let p = 0;
    const prefixes = rnd() % 5;
    for (let k = 0; k < prefixes; k++) bytes[p++] = LEGACY_PREFIXES[rnd() % LEGACY_PREFIXES.length]!;
    if (rnd() % 2 === 0) bytes[p++] = 0x40 | (rnd() & 15);
    if (rnd() % 4 !== 0) {
      const e = entries[rnd() % entries.length]!;
      if (e.map === 1) bytes[p++] = 0x0f;
      bytes[p++] = e.opcode;
      if (e.modrm >= 0) bytes[p++] = e.modrm;
      else if (e.ext >= 0) bytes[p++] = (rnd() & 0xc7) | (e.ext << 3);
    }
    run(tally, bytes);
  }
  t.deepEqual(tally.mismatches, [], `${tally.mismatches.length} mismatches`);
  t.log(`${tally.cases} cases, ${tally.agreeValid} valid and agreeing`);
});

test('fully random byte strings', (t) => {
  const rnd = xorshift(0xbadc0de);
  const tally = newTally();
  for (let n = 0; n < 20000; n++) {
    const bytes = new Uint8Array(16);
    randomTail(rnd, bytes, 0);
    run(tally, bytes);
  }
  t.deepEqual(tally.mismatches, [], `${tally.mismatches.length} mismatches`);
});

test('the 15-byte limit: 15 bytes decode, 16 do not', (t) => {
  const tally = newTally();
  // add rax, [rax+rbx*8+0x12345678] with imm... : build from prefixes + a 10-byte instruction.
  const core = [0x48, 0x81, 0x84, 0xd8, 0x78, 0x56, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde]; // add qword [rax+rbx*8+0x12345678], 0xdeadbeef
  for (let pad = 0; pad <= 5; pad++) {
    const bytes = new Uint8Array(20);
    bytes.fill(0x66, 0, pad);
    // A REX prefix must be last: insert legacy 0x3e prefixes before the core instruction.
    bytes.fill(0x3e, 0, pad);
    bytes.set(core, pad);
    run(tally, bytes);
    const r = decode(bytes, 0, bytes.length);
    if (pad + core.length <= 15) t.is(typeof r === 'number' ? r : r.len, pad + core.length, `length with ${pad} prefixes`);
    else t.is(r, 2 /* DECODE_TOO_LONG */, `${pad + core.length} bytes must be too long`);
  }
  t.deepEqual(tally.mismatches, []);
});

test('every supported table entry is exercised by an agreeing case', (t) => {
  const rnd = xorshift(0xfeed);
  const tally = newTally();
  // Every mod × rm combination, with the reg field drawn at random (or the entry's extension).
  const modrms: number[] = [];
  for (let m = 0; m < 256; m += 8) modrms.push(m);
  for (const e of OPCODE_TABLE) {
    if (e.unsupported) continue;
    for (const pre of [[], [0x66], [0x48], [0xf3], [0xf2], [0x41]]) {
      for (const m of e.hasModrm ? modrms : [0]) {
        const bytes = new Uint8Array(16);
        randomTail(rnd, bytes, 0);
        let p = 0;
        for (const b of pre) bytes[p++] = b;
        if (e.map === 1) bytes[p++] = 0x0f;
        bytes[p++] = e.opcode;
        if (e.hasModrm) bytes[p++] = e.modrm >= 0 ? e.modrm : (m & 0xc7) | ((e.ext >= 0 ? e.ext : rnd() & 7) << 3);
        run(tally, bytes);
      }
    }
  }
  t.deepEqual(tally.mismatches, [], `${tally.mismatches.length} mismatches`);
  const missing = OPCODE_TABLE.filter((e) => !e.unsupported && !tally.covered.has(e))
    .map((e) => `${e.map ? '0f ' : ''}${e.opcode.toString(16)} ${e.mnemonic} ${e.operands.join(',')}`);
  t.deepEqual(missing, []);
});
