/**
 * Tests that run guest operations on both KVM backends (docs/real-kvm.md §5): the model always,
 * the machine's /dev/kvm where it is usable. A test is registered once per backend, its title
 * ending in `[model]` or `[kvm]`; where real KVM cannot be had — or the host lacks what the test
 * needs (Heki, CPL0 hypercalls, a CPUID feature user space can take away) — the `[kvm]` one is a
 * todo, "not run: why", which ava shows as such and never counts as a pass.
 *
 * The host's documented quirks (host/conform/known-divergences.ts, by vendor module) are what a
 * test expects instead of upstream KVM's answer on that host: `b.quirk(id)`.
 */
import test, { type ExecutionContext } from 'ava';
import { hostQuirks } from '../../host/conform/known-divergences.js';
import type { BackendName } from '../../host/kvm/api/backend.js';
import { probeKvm } from '../../host/kvm/real/probe.js';
import { modelSupport, openBackend, type Finding, type HostSupport, type VmmOptions } from '../../host/vmm/index.js';

export interface TestBackend {
  readonly name: BackendName;
  /** The backend, surveyed (openBackend). */
  readonly support: HostSupport;
  /** The Vmm options that put a VMM on this backend. */
  readonly vmm: Pick<VmmOptions, 'backend' | 'host'>;
  /** Whether this host has the documented quirk `id` (known-divergences.ts). */
  quirk(id: string): boolean;
}

function testBackend(support: HostSupport): TestBackend {
  const quirks = new Set(hostQuirks(support.host));
  return { name: support.backend.name, support, vmm: { backend: support.backend, host: support }, quirk: (id) => quirks.has(id) };
}

/** The model, and real KVM or why there is none here. */
const BACKENDS: readonly (TestBackend | { readonly name: BackendName; readonly why: string })[] = [
  testBackend(modelSupport()),
  await (async () => {
    const probe = await probeKvm();
    if (probe.verdict !== 'usable') return { name: 'kvm' as const, why: probe.summary };
    return testBackend(await openBackend('kvm'));
  })(),
];

/** Real KVM, when usable here (for tests of the real backend alone). */
export const realBackend: TestBackend | undefined = BACKENDS.map((b) => ('support' in b ? b : undefined)).find((b) => b?.name === 'kvm');

export interface BackendTestOptions {
  /** What the test needs of the host beyond the API: asked per backend; where absent, a "not run" todo with the finding's detail. */
  readonly needs?: (b: TestBackend) => Finding | Promise<Finding>;
  /** Run one at a time (ava's test.serial): for tests that start processes of their own. */
  readonly serial?: boolean;
}

/** Registers `body` once per backend: `title [model]`, `title [kvm]` (or its "not run: why" todo). */
export async function backendTest(
  title: string,
  body: (t: ExecutionContext, b: TestBackend) => void | Promise<void>,
  options: BackendTestOptions = {},
): Promise<void> {
  for (const b of BACKENDS) {
    const named = `${title} [${b.name}]`;
    if (!('support' in b)) {
      test.todo(`${named} — not run: ${b.why}`);
      continue;
    }
    const need = options.needs === undefined ? undefined : await options.needs(b);
    if (need !== undefined && !need.present) test.todo(`${named} — not run: ${need.detail}`);
    else (options.serial === true ? test.serial : test)(named, (t) => body(t, b));
  }
}

/** What a test needs: Heki under the v2 profile (the default policy's). */
export const HEKI_V2 = (b: TestBackend): Finding => b.support.heki.v2;
/** What a test needs: hypercalls at CPL0 that complete. */
export const CPL0_HYPERCALLS = (b: TestBackend): Finding => ({ present: b.support.hypercalls.complete, detail: b.support.hypercalls.detail });
