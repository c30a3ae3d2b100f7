#!/usr/bin/env node
/** The `pinbox` command. */
const [command] = process.argv.slice(2);
if (command === 'demo') {
  process.stdout.write('pinbox demo: nothing runs yet — the test VMM has not been built.\n');
  process.exit(0);
}
process.stderr.write(`pinbox: unknown command ${command ?? '(none)'}\nusage: pinbox demo\n`);
process.exit(2);
