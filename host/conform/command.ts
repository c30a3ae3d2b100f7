/**
 * `pinbox conform [FILES|DIRS…] [--host URL --token T | --backend model|kvm | --diff] [--reporter pretty|tap|json|junit] [--list]`
 * (the command line is parsed by host/cli, which hands the options to conform()).
 *
 * Exit codes: 0 when no scenario failed and at least one passed — one the host cannot run
 * (unsupported) is neither, so a run in which nothing could run is not a pass either — (with
 * --list: when every file is a valid scenario); 1 when any failed or was malformed, when there
 * were no scenarios at all or none could run (a run that checks nothing must not look like a
 * pass), or when the target could not be reached; 2 for a usage error (args.ts).
 * With --diff: 0 when every step on which the two backends differ is explained (a documented host
 * quirk or model decision) and some scenario ran on both; 1 otherwise.
 *
 * The targets themselves come from the caller (`createTarget`): the in-process one without
 * --host (on the model, or on /dev/kvm with --backend kvm), the remote one with it; --diff asks
 * for both backends. See target.ts for what they must do.
 */
import type { Endpoint } from '../../protocol/transports/endpoint.js';
import type { BackendName } from '../kvm/api/backend.js';
import { diffSuite, summariseDiff } from './diff.js';
import { discoverScenarioFiles } from './discover.js';
import { createDiffReporter, DIFF_REPORTER_NAMES } from './reporters/diff.js';
import type { RunOptions } from './run-scenario.js';
import { createReporter, type ReportOutput, type ReporterName } from './reporters/index.js';
import { summarise } from './results.js';
import { loadScenario, runSuite } from './runner.js';
import type { ScenarioTarget } from './target.js';

export interface ConformOptions {
  /** Scenario files and folders; empty: `defaultPaths`. */
  readonly paths: readonly string[];
  readonly defaultPaths: readonly string[];
  readonly reporter: ReporterName;
  readonly list: boolean;
  /** A pinbox server's control endpoint, and its token; absent: in-process. */
  readonly host?: { readonly endpoint: Endpoint; readonly token: string };
  /** The in-process target's KVM (default the model). */
  readonly backend?: BackendName;
  /** Each scenario on both backends, and where they differ (diff.ts); reporter pretty or json. */
  readonly diff?: boolean;
  readonly stepTimeoutMs?: number;
}

export interface ConformIo {
  readonly stdout: ReportOutput;
  readonly stderr: { write(text: string): void };
}

/** Makes the target: the remote one for `host`, else the in-process one on `backend`. */
export type TargetFactory = (host: ConformOptions['host'], backend: BackendName) => Promise<ScenarioTarget>;

export const EXIT_PASSED = 0;
export const EXIT_FAILED = 1;
/** What args.ts gives a usage error: here, --diff with a reporter it does not have. */
export const EXIT_USAGE = 2;

function list(files: readonly string[], options: ConformOptions, io: ConformIo): number {
  let malformed = 0;
  for (const file of files) {
    const loaded = loadScenario(file);
    if ('error' in loaded) {
      malformed++;
      io.stderr.write(`${loaded.error.message}\n`);
      continue;
    }
    const { name, cases, steps } = loaded.scenario;
    if (options.reporter === 'json') {
      io.stdout.write(JSON.stringify({ name, file, cases, steps: steps.length }) + '\n');
    } else {
      io.stdout.write(`${file}: ${name}${cases.length > 0 ? ` [${cases.join(', ')}]` : ''}\n`);
    }
  }
  return malformed === 0 ? EXIT_PASSED : EXIT_FAILED;
}

export async function conform(options: ConformOptions, io: ConformIo, createTarget: TargetFactory): Promise<number> {
  const paths = options.paths.length > 0 ? options.paths : options.defaultPaths;
  const files = discoverScenarioFiles(paths);
  if (files.length === 0) {
    io.stderr.write(`pinbox conform: no scenario files in ${paths.join(', ')}\n`);
    return EXIT_FAILED;
  }
  if (options.list) return list(files, options, io);

  if (options.diff === true) return diff(files, options, io, createTarget);

  let target: ScenarioTarget;
  try {
    target = await createTarget(options.host, options.backend ?? 'model');
  } catch (e) {
    io.stderr.write(`pinbox conform: cannot reach the target: ${messageOf(e)}\n`);
    return EXIT_FAILED;
  }
  const reporter = createReporter(options.reporter, io.stdout);
  try {
    const results = await runSuite(files, target, reporter, runOptions(options));
    reporter.finish(results);
    const { passed, failed } = summarise(results);
    if (failed === 0 && passed === 0) io.stderr.write('pinbox conform: no scenario could run on this host\n');
    return failed === 0 && passed > 0 ? EXIT_PASSED : EXIT_FAILED;
  } finally {
    await target.close();
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function runOptions(options: ConformOptions): RunOptions {
  return options.stepTimeoutMs === undefined ? {} : { stepTimeoutMs: options.stepTimeoutMs };
}

async function diff(files: readonly string[], options: ConformOptions, io: ConformIo, createTarget: TargetFactory): Promise<number> {
  if (options.reporter !== 'pretty' && options.reporter !== 'json') {
    io.stderr.write(`pinbox conform: --diff reports as ${DIFF_REPORTER_NAMES.join(' or ')}, not ${options.reporter}\n`);
    return EXIT_USAGE;
  }
  const made: ScenarioTarget[] = [];
  try {
    for (const backend of ['model', 'kvm'] as const) {
      try {
        made.push(await createTarget(undefined, backend));
      } catch (e) {
        io.stderr.write(`pinbox conform --diff: cannot run on ${backend === 'kvm' ? 'real KVM' : 'the model'}: ${messageOf(e)}\n`);
        return EXIT_FAILED;
      }
    }
    const reporter = createDiffReporter(options.reporter, io.stdout);
    const diffs = await diffSuite(files, { model: made[0]!, kvm: made[1]! }, reporter, runOptions(options));
    reporter.finish(diffs);
    const s = summariseDiff(diffs);
    return s.malformed === 0 && s.steps === s.explained && s.agree + s.diverge > 0 ? EXIT_PASSED : EXIT_FAILED;
  } finally {
    for (const t of made) await t.close();
  }
}
