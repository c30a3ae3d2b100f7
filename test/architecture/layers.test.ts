/**
 * The layering of docs/architecture.md, as data, held against every import in the repository.
 * This table is the source of truth for which layer may import which: docs/architecture.md
 * describes it, and this test fails when the code does otherwise.
 *
 * Imports only go down — cli → conform → vmm → kvm → x86 — and any layer may skip down past
 * another, except that the VMM and conform reach KVM through its public interface alone
 * (host/kvm/api), never the model or the CPU, so that they run on either backend. Everything may
 * use protocol, except the CPU, which takes only the architecture's own numbers. guest-sdk and
 * control import only protocol; nothing under host/ imports guest-sdk, and of host/ only the
 * command (a control client) imports control. Tests may use anything. The real backend
 * (host/kvm/real) is loaded only by dynamic import, so nothing native is needed to run the model.
 * Only direct imports are checked; a name imported through a barrel (protocol/abi.ts,
 * protocol/index.ts, a folder's index.ts) counts as an import of the file that defines it.
 */
import test from 'ava';
import { build } from 'esbuild';
import { definingFile, importsOf, repoPath, typeScriptFiles, type ImportRef } from './imports.js';

interface Layer {
  /** The files of the layer: a folder (ending in '/') or a file. The longest match wins. */
  readonly files: readonly string[];
  /** The layers it may import, besides itself. */
  readonly mayImport: readonly LayerName[];
}

type LayerName =
  | 'x86 architecture' | 'protocol' | 'guest-sdk' | 'control'
  | 'host/x86' | 'host/x86 decoder' | 'host/kvm api' | 'host/kvm' | 'host/vmm' | 'host/conform' | 'host/cli' | 'pinbox/host'
  | 'examples' | 'test';

/** What the VMM may use: KVM's public interface, and the protocol. */
const VMM_SEES: readonly LayerName[] = ['host/kvm api', 'protocol', 'x86 architecture'];
const BELOW_VMM: readonly LayerName[] = ['host/kvm api', 'host/kvm', 'host/x86', 'host/x86 decoder', 'protocol', 'x86 architecture'];

const LAYERS: Readonly<Record<LayerName, Layer>> = {
  /** The processor's own numbers (CR/EFER/RFLAGS bits, vectors, MSRs, CPUID bits): facts of the
   * architecture, which every layer may use, the CPU included. */
  'x86 architecture': { files: ['protocol/abi/x86-arch.ts'], mayImport: [] },
  /** The wire contract and the ABI numbers: it imports nothing of ours. */
  'protocol': { files: ['protocol/'], mayImport: ['x86 architecture'] },
  /** The guest side speaks only the protocol. */
  'guest-sdk': { files: ['guest-sdk/'], mayImport: ['protocol', 'x86 architecture'] },
  /** The control side (pinbox/control, a client of a server's control endpoint) speaks only the protocol too. */
  'control': { files: ['control/'], mayImport: ['protocol', 'x86 architecture'] },
  /** "The hardware": nothing above it, and of protocol only the architecture's numbers — not the
   * KVM API, not Heki, not the wire. */
  'host/x86': { files: ['host/x86/'], mayImport: ['host/x86 decoder', 'x86 architecture'] },
  /**
   * The CPU's decoder and disassembler, as a door: bytes in, an instruction and its text out, no
   * CPU state. DECISION: conform may use these two files — `pinbox conform` checks that an exec
   * step's `asm` names the instructions its `code` holds (host/conform/asm-check.ts) — without
   * running anything on the model, so it stays backend-neutral. The instruction table behind them
   * is the CPU's own (it also drives execution), so the door may import the CPU; nothing else of
   * the CPU is open to conform.
   */
  'host/x86 decoder': { files: ['host/x86/decode/decoder.ts', 'host/x86/decode/describe.ts'], mayImport: ['host/x86', 'x86 architecture'] },
  /**
   * KVM's public interface (docs/architecture.md, "KVM and the VMM"): one interface per fd,
   * kvm_run and its exits, registers, guest memory, errors, the model's extensions, and the
   * backends. Its types alias the CPU's register shapes; backend.ts makes the model and loads the
   * real backend, so it may reach the rest of host/kvm.
   */
  'host/kvm api': { files: ['host/kvm/api/'], mayImport: ['host/kvm', 'host/x86', 'host/x86 decoder', 'protocol', 'x86 architecture'] },
  /** "The kernel" — the model and the real backend — which implements the interface; the CPU below it and the ABI. */
  'host/kvm': { files: ['host/kvm/'], mayImport: ['host/kvm api', 'host/x86', 'host/x86 decoder', 'protocol', 'x86 architecture'] },
  /** "User space": KVM's public interface only — never the model's classes, never the CPU — so that it runs on either backend. */
  'host/vmm': { files: ['host/vmm/'], mayImport: VMM_SEES },
  /** Conformance scenarios and their targets, over the VMM; of KVM, the interface only (a target runs on either backend). */
  'host/conform': { files: ['host/conform/'], mayImport: ['host/vmm', 'host/x86 decoder', ...VMM_SEES] },
  /**
   * The `pinbox` command, on top of everything. DECISION: it may also import examples/, for one
   * reason — `pinbox demo` is the hardened-guest example (examples/harden.ts) run in this process,
   * so the command shows exactly the code a reader finds in examples/. That is the one door by
   * which host/ reaches the guest SDK (the example is a guest), and it opens only here; nothing
   * else under host/ may import examples/ or guest-sdk/.
   */
  'host/cli': { files: ['host/cli/', 'host/cli.ts'], mayImport: ['host/conform', 'host/vmm', ...BELOW_VMM, 'control', 'examples'] },
  /** The pinbox/host entry point: the core, KVM and the VMM, not the runner or the command. */
  'pinbox/host': { files: ['host/index.ts'], mayImport: ['host/vmm', ...BELOW_VMM] },
  /** Runnable guests and their hosts: anything but the tests (an example runs from dist/
   * without test/) and the command (which imports the examples). */
  'examples': {
    files: ['examples/'],
    mayImport: ['guest-sdk', 'control', 'host/conform', 'host/vmm', ...BELOW_VMM, 'pinbox/host'],
  },
  /** Tests may use anything. */
  'test': {
    files: ['test/'],
    mayImport: ['guest-sdk', 'control', 'host/cli', 'host/conform', 'host/vmm', ...BELOW_VMM, 'pinbox/host', 'examples'],
  },
};

/** The folders the layers cover; every .ts file in them must belong to a layer. */
const ROOTS = ['protocol', 'guest-sdk', 'control', 'host', 'examples', 'test'];

function layerOf(file: string): LayerName | undefined {
  let best: { name: LayerName; length: number } | undefined;
  for (const [name, layer] of Object.entries(LAYERS) as [LayerName, Layer][]) {
    for (const prefix of layer.files) {
      const hit = prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix;
      if (hit && (best === undefined || prefix.length > best.length)) best = { name, length: prefix.length };
    }
  }
  return best?.name;
}

const files = typeScriptFiles(ROOTS);
const imports = new Map<string, ImportRef[]>(files.map((f) => [f, importsOf(f)]));

/** The files an import depends on: per name, the file that defines it; else the module itself. */
function dependencies(ref: ImportRef): string[] {
  if (ref.target === undefined) return [];
  if (ref.names === undefined || !ref.target.endsWith('.ts')) return [ref.target];
  return [...new Set(ref.names.map((name) => definingFile(ref.target!, name)))];
}

test('every TypeScript file belongs to a layer, and every relative import names a file that exists', (t) => {
  t.deepEqual(files.filter((f) => layerOf(f) === undefined), [], 'files outside every layer (add them to LAYERS)');
  const unresolved: string[] = [];
  for (const [file, refs] of imports) {
    for (const ref of refs) if (ref.specifier.startsWith('.') && ref.target === undefined) unresolved.push(`${file}:${ref.line} ${ref.specifier}`);
  }
  t.deepEqual(unresolved, []);
  t.true(files.length > 300, `the walk found ${files.length} files`);
});

test('imports go down the layers only (the table above)', (t) => {
  const violations: string[] = [];
  for (const [file, refs] of imports) {
    const from = layerOf(file)!;
    for (const ref of refs) {
      for (const dep of dependencies(ref)) {
        const to = layerOf(dep);
        if (to === undefined || to === from || LAYERS[from].mayImport.includes(to)) continue;
        const via = dep === ref.target ? '' : ` (through ${ref.target})`;
        violations.push(`${file}:${ref.line}: ${from} imports ${to}: ${dep}${via}`);
      }
    }
  }
  t.deepEqual(violations, []);
});

test('the reading of imports misses nothing esbuild resolves (a check on the scanner itself)', async (t) => {
  const result = await build({
    entryPoints: files,
    bundle: true,
    write: false,
    metafile: true,
    outdir: 'build/architecture-scan',
    platform: 'node',
    format: 'esm',
    splitting: true,
    packages: 'external',
    logLevel: 'silent',
  });
  const missed: string[] = [];
  let seen = 0;
  for (const [input, info] of Object.entries(result.metafile.inputs)) {
    const file = repoPath(input);
    const ours = new Set((imports.get(file) ?? []).map((r) => r.target));
    for (const imp of info.imports) {
      if (imp.external || imp.path.includes('node_modules')) continue;
      seen++;
      const target = repoPath(imp.path);
      if (!ours.has(target)) missed.push(`${file} → ${target} (${imp.original ?? imp.kind})`);
    }
  }
  t.deepEqual(missed, []);
  t.true(seen > 1000, `esbuild saw ${seen} imports between our files`);
});

test('the real backend is imported only dynamically from outside it (a VMM on the model loads nothing native)', (t) => {
  const REAL = 'host/kvm/real/';
  const static_: string[] = [];
  let dynamicImports = 0;
  for (const [file, refs] of imports) {
    if (file.startsWith(REAL) || file.startsWith('test/')) continue;
    for (const ref of refs) {
      if (ref.target === undefined || !ref.target.startsWith(REAL)) continue;
      if (ref.dynamic) dynamicImports++;
      else static_.push(`${file}:${ref.line} ${ref.specifier}`);
    }
  }
  t.deepEqual(static_, []);
  t.true(dynamicImports >= 1, 'loadBackend() imports it');
});

test('the table is consistent: every layer it names exists', (t) => {
  for (const [name, layer] of Object.entries(LAYERS)) {
    for (const to of layer.mayImport) t.true(to in LAYERS, `${name} names ${to}`);
  }
});
