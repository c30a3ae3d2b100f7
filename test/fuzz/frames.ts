/**
 * Hostile frames: what a broken or malicious client sends a pinbox server. Well-framed messages
 * whose values are anything msgpack can say (floats, deep nesting, huge strings, wrong types,
 * unknown ops, reused and impossible ids), requests that are valid but costly (random guest code,
 * batches), frames with lying lengths, mutated bytes, and the stream cut into odd pieces.
 */
import { encodeMsgpack } from '../../protocol/codec.js';
import { CONTROL_OPS, GUEST_OPS } from '../../protocol/messages/index.js';
import { randomCode } from './code.js';
import type { Random } from './random.js';

const GUEST_OP_NAMES = Object.keys(GUEST_OPS);
const CONTROL_OP_NAMES = Object.keys(CONTROL_OPS);
/** VMs a fuzzed control request may name: never the VMs the campaign watches. */
const SCRATCH_VMS = ['scratch', 'scratch-2', 'nope'];

/** Any value msgpack can carry, biased to the edges of what the protocol accepts. */
export function randomValue(r: Random, depth = 0): unknown {
  switch (r.below(depth > 3 ? 9 : 12)) {
    case 0: return r.pick([0, 1, -1, 255, 256, 65535, 65536, 0x7fffffff, 0xffffffff, 2 ** 32, 2 ** 53 - 1, -(2 ** 31)]);
    case 1: return r.pick([r.u64(), -1n, 1n << 63n, (1n << 64n) - 1n]);
    case 2: return r.pick([0.5, -0, NaN, Infinity, 1e300]);
    case 3: return r.pick(['', 'a', 'x'.repeat(r.between(60, 70)), 'é', 'vm.name-1', 'x'.repeat(5000)]);
    case 4: return r.bytes(r.pick([0, 1, 15, 16, 1536, 1537, 4096]));
    case 5: return r.chance(0.5);
    case 6: return null;
    case 7: return r.u32();
    case 8: return r.pick(['0x10', 'KVM_EXIT_HLT', 'guest', 'control']);
    case 9: return Array.from({ length: r.between(0, 5) }, () => randomValue(r, depth + 1));
    case 10: return Object.fromEntries(Array.from({ length: r.between(0, 5) }, () => [r.pick(['id', 'op', 'vm', 'index', 'value', 'ops', 'cr', 'code', r.pick(['', 'zz', '__proto__'])]), randomValue(r, depth + 1)]));
    default: return nested(r.between(60, 70));
  }
}

/** Arrays nested `n` deep: at and past the protocol's 64 levels. */
function nested(n: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

/** Params that a guest op would accept, sometimes; random ones otherwise. */
function guestParams(r: Random, op: string): Record<string, unknown> {
  if (r.chance(0.3)) return randomValue(r, 1) as Record<string, unknown> ?? {};
  switch (op) {
    case 'rdmsr': return { index: r.pick([r.u32(), 0x10, 0xc0000080, 0x1b, 0x48, 0x4b564d00]) };
    case 'wrmsr': return { index: r.pick([r.u32(), 0xc0000080, 0x1b, 0x277]), value: r.u64() };
    case 'readCr': return { cr: r.pick([0, 2, 3, 4, 8, 1]) };
    case 'writeCr': return { cr: r.pick([0, 3, 4, 8]), value: r.u64() };
    case 'lmsw': return { value: r.below(0x10000) };
    case 'cpuid': return { leaf: r.pick([0, 1, 7, 0xd, 0x40000000, r.u32()]), subleaf: r.below(4) };
    case 'hypercall': return { nr: r.pick([13n, 1n, 5n, r.u64()]), args: [r.u64(), r.u64()].slice(0, r.below(3)) };
    case 'exec': return { code: randomCode(r), budget: r.between(1, 20_000), ...(r.chance(0.2) && { cpl: 3 }) };
    case 'batch': return { ops: Array.from({ length: r.between(1, 40) }, () => { const o = r.pick(GUEST_OP_NAMES.filter((n) => n !== 'batch')); return { op: o, ...guestParams(r, o) }; }) };
    default: return {};
  }
}

function controlParams(r: Random, op: string): Record<string, unknown> {
  if (r.chance(0.4)) return randomValue(r, 1) as Record<string, unknown> ?? {};
  const vm = r.pick(SCRATCH_VMS);
  switch (op) {
    case 'createVm': return { vm, replace: r.chance(0.5), ...(r.chance(0.5) && { policy: r.pick(['{}', '{"vcpus": 2}', '{"vcpus": 0}', 'not json', '[]']) }) };
    case 'setMsrFilter': return { vm, flags: r.below(3), ranges: [{ flags: r.below(4), base: r.u32(), nmsrs: r.below(0x3000), bitmap: r.bytes(r.below(40)) }] };
    case 'events': return { since: r.u64() >> BigInt(r.below(64)), limit: r.between(0, 10_001) };
    case 'subscribe': return r.chance(0.5) ? {} : { events: ['kvm_exit', r.pick(['nope', 'heki_denial'])] };
    default: return { vm, vcpu: r.below(3), cap: r.u32(), sub: r.below(4), snapshot: r.bytes(r.below(64)), regs: { rax: r.u64() }, indices: [r.u32()] };
  }
}

/** One request-shaped value for an endpoint of this role. */
export function randomRequest(r: Random, role: 'guest' | 'control'): unknown {
  const names = role === 'guest' ? GUEST_OP_NAMES : CONTROL_OP_NAMES;
  const op = r.chance(0.85) ? r.pick(names) : r.pick(['hello', 'nope', '', 'batch', ...(role === 'guest' ? CONTROL_OP_NAMES : GUEST_OP_NAMES)]);
  const id = r.chance(0.9) ? r.below(8) : r.pick<unknown>([r.u32(), -1, 2 ** 32, 'x', null, 1.5, undefined]);
  const params = role === 'guest' ? guestParams(r, op) : controlParams(r, op);
  const msg: Record<string, unknown> = { ...(typeof params === 'object' && !Array.isArray(params) ? params : { x: params }), op };
  if (id !== undefined) msg.id = id;
  return r.chance(0.05) ? randomValue(r) : msg;
}

function framed(body: Uint8Array, lie = 0): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, Math.max(0, body.length + lie) >>> 0);
  out.set(body, 4);
  return out;
}

/** A frame of one of the hostile kinds. */
export function hostileFrame(r: Random, role: 'guest' | 'control'): Uint8Array {
  switch (r.below(10)) {
    case 0:
      return r.bytes(r.between(1, 64)); // not even a frame
    case 1:
      return framed(r.bytes(r.between(1, 64))); // a frame of noise
    case 2: {
      const body = encodeMsgpack(randomRequest(r, role));
      for (let i = r.between(1, 4); i > 0; i--) body[r.below(body.length)] = r.u32() & 0xff;
      return framed(body); // a message with bytes changed
    }
    case 3: {
      const body = encodeMsgpack(randomRequest(r, role));
      return framed(body.subarray(0, r.below(body.length)), r.pick([0, 1, 8])); // truncated, the length sometimes lying
    }
    case 4:
      return r.pick([framed(new Uint8Array(0)), Uint8Array.of(0xff, 0xff, 0xff, 0xff), Uint8Array.of(0, 0x20, 0, 0)]); // empty; too large
    default:
      return framed(encodeMsgpack(randomRequest(r, role)));
  }
}
