/**
 * The machine's KVM as results name it (KvmBackend.describe()): the kernel, the vendor module,
 * the API version, the kvm.ignore_msrs module parameter, the CR4 features the host kernel turned
 * on, and what the kernel answers at Heki's capability numbers. Read from /sys, /proc and the
 * system fd; `pinbox probe` (probe.ts) shows the same facts and more.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { BackendHost } from '../api/backend.js';
import type { Kvm } from './kvm.js';

/** [number, mainline name, Heki name(s)] (include/uapi/linux/kvm.h; protocol/abi/heki.ts HEKI_PROFILES). */
export const HEKI_NUMBERS: readonly (readonly [number, string, string])[] = [
  [235, 'KVM_CAP_VM_TYPES', 'v2 KVM_CAP_HEKI_CONFIGURE'],
  [236, 'KVM_CAP_PRE_FAULT_MEMORY', 'v2 KVM_CAP_HEKI_DENIAL, v3 KVM_CAP_HEKI_CONFIGURE'],
  [237, 'KVM_CAP_X86_APIC_BUS_CYCLES_NS', 'v3 KVM_CAP_HEKI_DENIAL'],
];

/**
 * /proc/cpuinfo flags that name a CR4 feature Linux turns on at boot when the CPU has it
 * (arch/x86/kernel/cpu/common.c: setup_smep, setup_smap, setup_umip, FSGSBASE since 5.9, PKU, LA57),
 * which is what Heki's pins are checked against (spec: pins must be set in the host's CR4).
 */
const CR4_FLAGS = ['smep', 'smap', 'umip', 'fsgsbase', 'pku', 'la57', 'ibt', 'user_shstk', 'fred'];

/** KVM's vendor modules: kvm_intel, kvm_amd, kvm_pvm … (built-in ones with parameters too). */
export function vendorModules(): string[] {
  const isVendor = (name: string): boolean => /^kvm_[a-z0-9_]+$/.test(name);
  try {
    return readdirSync('/sys/module').filter(isVendor).sort();
  } catch {
    try {
      return readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]!).filter(isVendor).sort();
    } catch {
      return [];
    }
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** kvm.ignore_msrs: "Y" or "N" in /sys/module/kvm/parameters (undefined where not shown). */
function ignoreMsrsParameter(): boolean | undefined {
  const v = readText('/sys/module/kvm/parameters/ignore_msrs')?.trim();
  return v === 'Y' ? true : v === 'N' ? false : undefined;
}

function cr4Flags(): string[] | undefined {
  const flags = readText('/proc/cpuinfo')?.split('\n').find((l) => l.startsWith('flags'))?.split(':')[1]?.trim().split(/\s+/);
  return flags === undefined ? undefined : CR4_FLAGS.filter((f) => flags.includes(f));
}

/** Describes the kernel behind `kvm`, and closes it. */
export function describeHost(kvm: Kvm): BackendHost {
  try {
    const modules = vendorModules();
    const kernel = release();
    const ignoreMsrs = ignoreMsrsParameter();
    const flags = cr4Flags();
    return Object.freeze({
      backend: 'kvm',
      summary: `Linux ${kernel}, ${modules.length > 0 ? modules.join(' + ') : 'no vendor module listed'}, KVM API ${kvm.apiVersion}`,
      kernel,
      vendorModules: modules,
      apiVersion: kvm.apiVersion,
      ...(ignoreMsrs !== undefined && { ignoreMsrs }),
      ...(flags !== undefined && { cr4Flags: flags }),
      hekiNumbers: HEKI_NUMBERS.map(([cap]) => ({ cap, value: kvm.checkExtensionRaw(cap) })),
    });
  } finally {
    kvm.close();
  }
}
