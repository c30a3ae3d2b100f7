/**
 * The lifetime of the backend's mappings (host/kvm/real/mapping.ts): a closed VM's memory and
 * kvm_run stay mapped (zero pages) while anything could reach them, and are unmapped once
 * collected. Run in a process of its own, with --expose-gc.
 */
import { execFileSync } from 'node:child_process';
import { realTest } from './real-guest.js';

realTest('closed VMs give their address space back once their views are collected', (t) => {
  const out = JSON.parse(
    execFileSync(process.execPath, ['--expose-gc', 'build/test/kvm-real/fixtures/unmap-child.js'], { encoding: 'utf8', timeout: 60_000 }),
  ) as { before: number; closed: number; collected: number };
  t.log(JSON.stringify(out));
  const added = out.closed - out.before;
  // 40 VMs of 16 MiB: at least 640 MiB of address space held after close, most of it returned.
  t.true(added >= 40 * 16 * 1024, `${added} kB held after close`);
  t.true(out.collected - out.before < added / 2, `${out.collected - out.before} kB still held after collection`);
});
