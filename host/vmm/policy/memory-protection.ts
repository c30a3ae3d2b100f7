/**
 * The policy's `memory` section in its object form (docs/memory-protection.md §7): MBEC,
 * how KVM delivers a refused access, what the VMM does then, and the ranges the VM is made with —
 * each one KVM_SET_MEMORY_ATTRIBUTES. Everything the KVM model would refuse is found here, with
 * the entry that would fail, so that a VM is never made with half its protections.
 */
import {
  KVM_MEMORY_ATTRIBUTE_PINBOX_NR, KVM_MEMORY_ATTRIBUTE_PINBOX_NUX, KVM_MEMORY_ATTRIBUTE_PINBOX_NW,
  KVM_MEMORY_ATTRIBUTE_PINBOX_NX, pinboxNoReadLacks, type HekiAbiProfile,
} from '../../../protocol/abi.js';
import type { MemoryPolicy, MemoryRegion } from './compiled.js';
import type { MemoryDenyName, MemoryText, OnDenial } from './document.js';
import type { IssueList } from './errors.js';
import { toBigInt } from './numbers.js';

const PAGE = 4096n;

/** The out-of-tree attribute each `deny` name sets (protocol/abi/pinbox-ext.ts). */
export const DENY_ATTRIBUTES: Readonly<Record<MemoryDenyName, bigint>> = {
  read: KVM_MEMORY_ATTRIBUTE_PINBOX_NR,
  write: KVM_MEMORY_ATTRIBUTE_PINBOX_NW,
  exec: KVM_MEMORY_ATTRIBUTE_PINBOX_NX,
  userExec: KVM_MEMORY_ATTRIBUTE_PINBOX_NUX,
};

/** The `deny` names of an attribute value (the inverse of DENY_ATTRIBUTES; bits it lacks are dropped). */
export function denyNames(attributes: bigint): MemoryDenyName[] {
  return (Object.keys(DENY_ATTRIBUTES) as MemoryDenyName[]).filter((n) => (attributes & DENY_ATTRIBUTES[n]) !== 0n);
}

/** No protections, KVM's delivery, onViolation "log": a policy without the section, or with the size alone. */
export const NO_MEMORY_POLICY: MemoryPolicy = Object.freeze({ applies: false, mbec: false, onViolation: 'log' as OnDenial, protect: Object.freeze([]) });

/**
 * Compiles the section against the VM it is for: `memorySize` bytes of guest memory, and the
 * profile whose KVM decides the default delivery (v2 has no KVM_EXIT_MEMORY_FAULT).
 */
export function compileMemoryPolicy(text: MemoryText, path: string, memorySize: number, profile: HekiAbiProfile, issues: IssueList): MemoryPolicy {
  const mbec = text.mbec ?? false;
  const exitAvailable = profile.KVM_EXIT_MEMORY_FAULT !== undefined;
  if (text.delivery === 'exit' && !exitAvailable) {
    issues.add(`${path}/delivery`, `"exit" conflicts with profile "${profile.name}": its KVM has no KVM_EXIT_MEMORY_FAULT (39 is KVM_EXIT_HEKI_CONFIGURE there); use "inject" or profile "v3"`);
  }
  const protect: MemoryRegion[] = [];
  (text.protect ?? []).forEach((r, i) => {
    const at = `${path}/protect/${i}`;
    const what = r.name === undefined ? `entry ${i}` : `entry ${i} ("${r.name}")`;
    const address = toBigInt(r.gpa);
    const size = toBigInt(r.size);
    let ok = true;
    const bad = (field: string, message: string): void => {
      issues.add(`${at}/${field}`, `${what}: ${message}`);
      ok = false;
    };
    if (address % PAGE !== 0n) bad('gpa', `0x${address.toString(16)} is not page-aligned (a multiple of 0x1000)`);
    if (size === 0n || size % PAGE !== 0n) bad('size', `0x${size.toString(16)} is not a non-zero multiple of the page size (0x1000)`);
    else if (address + size > BigInt(memorySize)) {
      bad('size', `0x${address.toString(16)}+0x${size.toString(16)} goes beyond guest memory (0x${BigInt(memorySize).toString(16)} bytes)`);
    }
    const deny = new Set(r.deny);
    let attributes = 0n;
    for (const n of deny) attributes |= DENY_ATTRIBUTES[n];
    if (deny.has('userExec') && !mbec) bad('deny', '"userExec" needs MBEC (memory.mbec true): without it one execute permission governs both modes');
    const missing = denyNames(pinboxNoReadLacks(attributes, mbec));
    if (missing.length > 0) bad('deny', `a page that cannot be read cannot be written or executed: "read" needs ${missing.map((n) => `"${n}"`).join(' and ')} denied too`);
    if (!ok) return;
    for (const other of protect) {
      if (address < other.address + other.size && other.address < address + size) {
        issues.add(at, `${what} overlaps entry ${other.index}${other.name === undefined ? '' : ` ("${other.name}")`}: each range is one KVM_SET_MEMORY_ATTRIBUTES, and a later one would replace what the earlier denies`);
        return;
      }
    }
    protect.push({ index: i, address, size, attributes, ...(r.name !== undefined && { name: r.name }) });
  });
  return {
    applies: mbec || text.delivery !== undefined || protect.length > 0,
    mbec,
    ...(text.delivery !== undefined && { delivery: text.delivery }),
    onViolation: text.onViolation ?? 'log',
    protect,
  };
}

/** The name of the policy range that covers `gpa`, if any. */
export function regionName(policy: MemoryPolicy, gpa: bigint): string | undefined {
  for (const r of policy.protect) if (gpa >= r.address && gpa < r.address + r.size) return r.name;
  return undefined;
}
