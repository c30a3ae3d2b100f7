/**
 * `pinbox probe`: what the machine's KVM offers the real backend (host/kvm/real/probe.ts), as
 * a one-line answer and the details, or as one JSON object with --json. Exits 0 when the real
 * backend is usable here, 1 when it is not (the first line says why).
 */
import type { ParsedCommand } from './args.js';
import type { Output } from './output.js';

export async function probeCommand(args: ParsedCommand, io: Output): Promise<number> {
  // Loaded only for this command; koffi itself only if the probe gets as far as opening the device.
  const { probeKvm } = await import('../kvm/real/probe.js');
  const p = await probeKvm({ path: args.string('device') });
  if (args.flag('json')) {
    io.out(JSON.stringify(p) + '\n');
    return p.verdict === 'usable' ? 0 : 1;
  }
  const row = (name: string, value: string): string => `  ${name.padEnd(12)}${value}\n`;
  const d = p.device;
  let text = `pinbox probe: ${p.summary}\n\n`;
  text += row('kernel', `${p.host.platform} ${p.host.arch} ${p.host.kernelRelease} (${p.host.kernelVersion})`);
  text += row('device', d.exists ? `${d.path} ${d.mode} ${d.owner}:${d.group}${d.accessible ? '' : ' (this user cannot open it)'}` : `${d.path} (missing)`);
  text += row('vendor', p.vendorModules.length > 0 ? p.vendorModules.join(', ') : '(none listed)');
  text += row('ffi', `koffi ${p.ffi.version} ${p.ffi.loaded ? 'loaded' : 'not loaded'}`);
  if (p.apiVersion !== undefined) text += row('api', `${p.apiVersion}, kvm_run mapping ${p.vcpuMmapSize} bytes`);
  if (p.capabilities.length > 0) {
    text += '\n  capabilities pinbox uses (KVM_CHECK_EXTENSION)\n';
    for (const c of p.capabilities) text += `    ${c.name.padEnd(34)}${String(c.cap).padStart(4)}  ${c.value}\n`;
    text += '\n  at Heki\'s numbers (out of tree; a non-zero answer is the mainline capability, not Heki)\n';
    for (const c of p.hekiNumbers) text += `    ${c.name.padEnd(34)}${String(c.cap).padStart(4)}  ${c.value}   (Heki: ${c.heki})\n`;
  }
  io.out(text);
  return p.verdict === 'usable' ? 0 : 1;
}
