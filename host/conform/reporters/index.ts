/** The four reporters, by the names `pinbox conform --reporter` takes. */
import { jsonReporter } from './json.js';
import { junitReporter } from './junit.js';
import { prettyReporter } from './pretty.js';
import type { ReportOutput, Reporter, ReporterName } from './reporter.js';
import { tapReporter } from './tap.js';

export { REPORTER_NAMES, type ReportOutput, type Reporter, type ReporterName } from './reporter.js';
export { jsonLine } from './json.js';
export { junitXml } from './junit.js';

const FACTORIES: Readonly<Record<ReporterName, (out: ReportOutput) => Reporter>> = {
  pretty: prettyReporter,
  tap: tapReporter,
  json: jsonReporter,
  junit: junitReporter,
};

export function createReporter(name: ReporterName, out: ReportOutput): Reporter {
  return FACTORIES[name](out);
}
