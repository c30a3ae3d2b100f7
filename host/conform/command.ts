/**
 * `pinbox conform [FILES|DIRS…] [--host URL --token T] [--reporter pretty|tap|json|junit] [--list]`
 * (the command line is parsed by host/cli, which hands the options to conform()).
 *
 * Exit codes: 0 when every scenario passed (with --list: when every file is a valid scenario);
 * 1 when any failed or was malformed, when there were no scenarios at all (a run that checks
 * nothing must not look like a pass), or when the target could not be reached; 2 for a usage
 * error (args.ts).
 *
 * The targets themselves come from the caller (`createTarget`): the in-process one without
 * --host, the remote one with it. See target.ts for what they must do.
 */
import type { Endpoint } from '../../protocol/transports/endpoint.js';
import { discoverScenarioFiles } from './discover.js';
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
  readonly stepTimeoutMs?: number;
}

export interface ConformIo {
  readonly stdout: ReportOutput;
  readonly stderr: { write(text: string): void };
}

export type TargetFactory = (host: ConformOptions['host']) => Promise<ScenarioTarget>;

export const EXIT_PASSED = 0;
export const EXIT_FAILED = 1;

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

  let target: ScenarioTarget;
  try {
    target = await createTarget(options.host);
  } catch (e) {
    io.stderr.write(`pinbox conform: cannot reach the target: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILED;
  }
  const reporter = createReporter(options.reporter, io.stdout);
  try {
    const results = await runSuite(files, target, reporter, options.stepTimeoutMs === undefined ? {} : { stepTimeoutMs: options.stepTimeoutMs });
    reporter.finish(results);
    return summarise(results).failed === 0 ? EXIT_PASSED : EXIT_FAILED;
  } finally {
    await target.close();
  }
}
