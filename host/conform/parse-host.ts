/** A host step's operation, as written, to model.ts's HostAction (after the schema). */
import { hvCrInterceptBit, KVM_MSR_FILTER_MAX_BITMAP_SIZE, type HvCrInterceptName } from '../../protocol/abi.js';
import { CR0_BIT_NAMES, CR4_BIT_NAMES, registerValue } from '../vmm/policy/control-register-names.js';
import { MAX_FILTER_BITMAP_BYTES } from '../../protocol/messages/control.js';
import type { FilterRange, HostAction, SregsField } from './model.js';
import type { HostText, RangeText } from './document.js';
import { hexBytesLength, parseHexBytes, toBigInt, toNumber } from './integers.js';
import { vcpuOf, type ParseContext } from './parse-context.js';
import { parseRegisterValues } from './parse-guest.js';
import { resolveCapability, resolveFilterFlags, resolveMemoryAttributes, resolveRangeFlags } from './resolve-names.js';

const SREGS_FIELDS: readonly SregsField[] = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'];
export const DEFAULT_SNAPSHOT_NAME = 'default';

function parseRange(text: RangeText, path: string, cx: ParseContext): FilterRange | undefined {
  const flags = resolveRangeFlags(text.flags, `${path}/flags`, cx);
  let bitmap: Uint8Array | null = null;
  if (text.bitmap !== null) {
    // A bitmap longer than KVM takes (KVM_MSR_FILTER_MAX_BITMAP_SIZE) goes to the host as it
    // is: KVM's own refusal (EINVAL for nmsrs past 0x3000, docs/msr-filter.md §2.3) is what a
    // scenario may want to test. Only what the wire cannot carry is a mistake here.
    const length = hexBytesLength(text.bitmap);
    if (length > MAX_FILTER_BITMAP_BYTES) {
      cx.issues.add(`${path}/bitmap`, `is ${length} bytes; the protocol carries at most ${MAX_FILTER_BITMAP_BYTES} (KVM itself takes ${KVM_MSR_FILTER_MAX_BITMAP_SIZE})`);
    } else {
      bitmap = parseHexBytes(text.bitmap);
    }
  }
  if (flags === undefined) return undefined;
  return { flags, base: toNumber(text.base), nmsrs: toNumber(text.nmsrs), bitmap };
}

export function parseHostAction(text: HostText, path: string, cx: ParseContext): HostAction | undefined {
  const [op] = Object.keys(text) as (keyof HostText)[];
  const at = `${path}/${op}`;
  switch (op) {
    case 'enableCap': {
      const t = text.enableCap!;
      const cap = resolveCapability(t.cap, `${at}/cap`, cx);
      if (cap === undefined) return undefined;
      return { op, cap, args: (t.args ?? []).map(toBigInt), flags: t.flags === undefined ? 0 : toNumber(t.flags) };
    }
    case 'checkExtension': {
      const cap = resolveCapability(text.checkExtension!.cap, `${at}/cap`, cx);
      return cap === undefined ? undefined : { op, cap };
    }
    case 'setMsrFilter': {
      const t = text.setMsrFilter!;
      const flags = resolveFilterFlags(t.flags, `${at}/flags`, cx);
      const ranges = t.ranges.map((r, i) => parseRange(r, `${at}/ranges/${i}`, cx));
      if (flags === undefined || ranges.some((r) => r === undefined)) return undefined;
      return { op, flags, ranges: ranges as FilterRange[] };
    }
    case 'getMsrs': {
      const t = text.getMsrs!;
      return { op, vcpu: vcpuOf(t.vcpu, `${at}/vcpu`, cx), indices: t.indices.map(toNumber) };
    }
    case 'setMsrs': {
      const t = text.setMsrs!;
      const entries = t.entries.map((e) => ({ index: toNumber(e.index), value: toBigInt(e.value) }));
      return { op, vcpu: vcpuOf(t.vcpu, `${at}/vcpu`, cx), entries };
    }
    case 'setSregs': {
      const t = text.setSregs!;
      const sregs = parseRegisterValues(t, SREGS_FIELDS);
      if (Object.keys(sregs).length === 0) cx.issues.add(at, `names no register to set (${SREGS_FIELDS.join(', ')})`);
      return { op, vcpu: vcpuOf(t.vcpu, `${at}/vcpu`, cx), sregs };
    }
    case 'resetVm':
      return { op };
    case 'initVcpu':
      return { op, vcpu: vcpuOf(text.initVcpu!.vcpu, `${at}/vcpu`, cx) };
    case 'snapshot': {
      const name = text.snapshot!.name ?? DEFAULT_SNAPSHOT_NAME;
      cx.snapshots.add(name);
      return { op, name };
    }
    case 'restore': {
      const name = text.restore!.name ?? DEFAULT_SNAPSHOT_NAME;
      if (!cx.snapshots.has(name)) cx.issues.add(`${at}/name`, `no earlier step takes a snapshot named "${name}"`);
      return { op, name };
    }
    case 'setCrFilter': {
      const t = text.setCrFilter!;
      return {
        op,
        flags: t.flags === undefined ? 0 : toNumber(t.flags),
        cr0Mask: t.cr0 === undefined ? 0n : registerValue(t.cr0, CR0_BIT_NAMES),
        cr4Mask: t.cr4 === undefined ? 0n : registerValue(t.cr4, CR4_BIT_NAMES),
        xcr0Mask: t.xcr0 === undefined ? undefined : toBigInt(t.xcr0),
      };
    }
    case 'setMemoryAttributes': {
      // Passed to KVM as written — unaligned, wrapping, outside the mask — for KVM to refuse.
      const t = text.setMemoryAttributes!;
      const attributes = resolveMemoryAttributes(t.attributes, `${at}/attributes`, cx);
      if (attributes === undefined) return undefined;
      return { op, address: toBigInt(t.address), size: toBigInt(t.size), attributes };
    }
    case 'setRegisterIntercepts': {
      const t = text.setRegisterIntercepts!;
      const all = (1n << 64n) - 1n;
      return {
        op,
        vcpu: t.vcpu === undefined ? undefined : vcpuOf(t.vcpu, `${at}/vcpu`, cx),
        control: t.intercept.reduce((m, name) => m | hvCrInterceptBit(name as HvCrInterceptName), t.control === undefined ? 0n : toBigInt(t.control)),
        cr0Mask: t.cr0Mask === undefined ? all : registerValue(t.cr0Mask, CR0_BIT_NAMES),
        cr4Mask: t.cr4Mask === undefined ? all : registerValue(t.cr4Mask, CR4_BIT_NAMES),
        miscEnableMask: t.miscEnableMask === undefined ? all : toBigInt(t.miscEnableMask),
      };
    }
    default:
      return undefined; // the schema has reported it
  }
}
