/**
 * What the machine's KVM offers, for `pinbox probe` and for results that must name the host
 * they ran on: the platform, the device and its permissions, the vendor module, the FFI
 * package, the API version and the capabilities pinbox uses (and those at Heki's numbers).
 * It never throws: what stands in the way is the verdict, with a one-line answer.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { HEKI_NUMBERS, vendorModules } from './host.js';
import { release, version } from 'node:os';
import * as abi from '../../../protocol/abi.js';
import { KvmError } from '../api/errors.js';
import { openKvm } from './kvm.js';
import { KOFFI_VERSION, loadLibc } from './libc.js';
import { RealKvmUnavailable } from './unavailable.js';

export type ProbeVerdict =
  | 'usable'
  | 'not-linux'
  | 'not-x86-64'
  | 'no-device'
  | 'no-permission'
  | 'no-ffi'
  | 'not-kvm'
  | 'api-version'
  | 'open-failed';

export interface ProbeCapability {
  readonly name: string;
  readonly cap: number;
  /** KVM_CHECK_EXTENSION on /dev/kvm, as the kernel answers it. */
  readonly value: number;
}

export interface KvmProbe {
  readonly verdict: ProbeVerdict;
  /** The one-line answer. */
  readonly summary: string;
  readonly host: { readonly platform: string; readonly arch: string; readonly kernelRelease: string; readonly kernelVersion: string };
  readonly device: {
    readonly path: string;
    readonly exists: boolean;
    readonly characterDevice?: boolean;
    /** e.g. "crw-rw----" */
    readonly mode?: string;
    readonly owner?: string;
    readonly group?: string;
    /** This process may open it read-write. */
    readonly accessible?: boolean;
  };
  /** kvm_intel, kvm_amd, kvm_pvm … as /sys/module (or /proc/modules) lists them. */
  readonly vendorModules: readonly string[];
  readonly ffi: { readonly package: 'koffi'; readonly version: string; readonly loaded: boolean };
  readonly apiVersion?: number;
  readonly vcpuMmapSize?: number;
  /** The capabilities pinbox uses. */
  readonly capabilities: readonly ProbeCapability[];
  /**
   * KVM_CHECK_EXTENSION at the numbers Heki's RFCs use, with what they mean on mainline: a
   * non-zero answer here is the mainline capability, not Heki (upstream KVM has no Heki).
   */
  readonly hekiNumbers: readonly (ProbeCapability & { readonly heki: string })[];
}

const PINBOX_CAPS: readonly [string, number][] = [
  ['KVM_CAP_USER_MEMORY', 3],
  ['KVM_CAP_EXT_CPUID', 7],
  ['KVM_CAP_NR_VCPUS', abi.KVM_CAP_NR_VCPUS],
  ['KVM_CAP_MAX_VCPUS', abi.KVM_CAP_MAX_VCPUS],
  ['KVM_CAP_SYNC_REGS', abi.KVM_CAP_SYNC_REGS],
  ['KVM_CAP_IMMEDIATE_EXIT', abi.KVM_CAP_IMMEDIATE_EXIT],
  ['KVM_CAP_X86_USER_SPACE_MSR', abi.KVM_CAP_X86_USER_SPACE_MSR],
  ['KVM_CAP_X86_MSR_FILTER', abi.KVM_CAP_X86_MSR_FILTER],
  ['KVM_CAP_ENFORCE_PV_FEATURE_CPUID', abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID],
  ['KVM_CAP_X86_TRIPLE_FAULT_EVENT', abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT],
];

function modeString(mode: number): string {
  const bits = 'rwxrwxrwx';
  let s = '';
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

/** The name of a uid or gid from /etc/passwd or /etc/group, else the number. */
function idName(file: string, id: number): string {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.split(':')[2] === String(id));
    return line?.split(':')[0] ?? String(id);
  } catch {
    return String(id);
  }
}

function describeDevice(path: string): KvmProbe['device'] {
  let st;
  try {
    st = statSync(path);
  } catch {
    return { path, exists: false };
  }
  let accessible = true;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch {
    accessible = false;
  }
  return {
    path,
    exists: true,
    characterDevice: st.isCharacterDevice(),
    mode: (st.isCharacterDevice() ? 'c' : st.isDirectory() ? 'd' : '-') + modeString(st.mode),
    owner: idName('/etc/passwd', st.uid),
    group: idName('/etc/group', st.gid),
    accessible,
  };
}

export async function probeKvm(options: { path?: string } = {}): Promise<KvmProbe> {
  const path = options.path ?? '/dev/kvm';
  const host = { platform: process.platform, arch: process.arch, kernelRelease: release(), kernelVersion: version() };
  const device = describeDevice(path);
  const modules = process.platform === 'linux' ? vendorModules() : [];
  const base = { host, device, vendorModules: modules, capabilities: [], hekiNumbers: [] };
  const ffi = (loaded: boolean) => ({ package: 'koffi' as const, version: KOFFI_VERSION, loaded });
  const verdict = (v: ProbeVerdict, summary: string, loaded = false): KvmProbe => ({ ...base, verdict: v, summary, ffi: ffi(loaded) });

  if (process.platform !== 'linux') return verdict('not-linux', `no real KVM: this is ${process.platform}, and /dev/kvm is a Linux device`);
  if (process.arch !== 'x64') return verdict('not-x86-64', `no real KVM for pinbox: this host is ${process.arch}, and KVM runs only guests of its own architecture (pinbox's are x86-64)`);
  // Whether koffi loads is told whatever the device says.
  let ffiError: RealKvmUnavailable | undefined;
  try {
    await loadLibc();
  } catch (e) {
    if (!(e instanceof RealKvmUnavailable)) throw e;
    ffiError = e;
  }
  const loaded = ffiError === undefined;
  if (!device.exists) {
    return verdict('no-device', `no real KVM: ${path} does not exist (no KVM module is loaded, or this machine offers no virtualization)`, loaded);
  }
  if (!device.accessible) {
    const groupRw = device.mode?.slice(4, 6) === 'rw';
    const fix = groupRw
      ? `add this user to group ${device.group}`
      : `only ${device.owner} may open it; give it a group that may (e.g. chgrp kvm ${path}; chmod 660 ${path}) and add this user to that group`;
    return verdict('no-permission', `no real KVM for this user: ${path} is ${device.mode} ${device.owner}:${device.group}; ${fix}`, loaded);
  }
  if (ffiError !== undefined) return verdict('no-ffi', `no real KVM backend: ${ffiError.message}`);
  let kvm;
  try {
    kvm = await openKvm({ path });
  } catch (e) {
    if (e instanceof RealKvmUnavailable) return verdict('api-version', `no real KVM backend: ${e.message}`, true);
    if (e instanceof KvmError && (e.code === 'ENOTTY' || e.code === 'EINVAL')) {
      return verdict('not-kvm', `no real KVM: ${path} is not a KVM device (${e.message})`, true);
    }
    if (e instanceof KvmError && (e.code === 'EACCES' || e.code === 'EPERM')) {
      return verdict('no-permission', `no real KVM for this user: ${e.message}`, true);
    }
    return verdict('open-failed', `no real KVM: ${e instanceof Error ? e.message : String(e)}`, true);
  }
  try {
    const capabilities = PINBOX_CAPS.map(([name, cap]) => ({ name, cap, value: kvm.checkExtensionRaw(cap) }));
    const hekiNumbers = HEKI_NUMBERS.map(([cap, name, heki]) => ({ name, cap, heki, value: kvm.checkExtensionRaw(cap) }));
    const vendor = modules.length > 0 ? modules.join(', ') : 'no vendor module listed';
    return {
      ...base,
      verdict: 'usable',
      summary: `real KVM is usable: API ${kvm.apiVersion}, ${vendor}, Linux ${host.kernelRelease}; Heki: not in upstream KVM`,
      ffi: ffi(true),
      apiVersion: kvm.apiVersion,
      vcpuMmapSize: kvm.vcpuMmapSize,
      capabilities,
      hekiNumbers,
    };
  } finally {
    kvm.close();
  }
}
