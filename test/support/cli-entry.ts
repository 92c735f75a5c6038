/**
 * The bin (`bin/nunq-connect.js`) run from the sources, for tests that need the CLI as its own
 * process without a build: `node --import tsx test/support/cli-entry.ts serve --config FILE`.
 * Same launcher logic: `serve` is re-executed with the service's node flags.
 */
import { fileURLToPath } from 'node:url';
import { needsRelaunch, relaunchWithFlags } from '../../src/cli/node-flags.js';

const argv = process.argv.slice(2);
if (needsRelaunch(argv, process.execArgv, process.env)) {
  await relaunchWithFlags(fileURLToPath(import.meta.url), argv);
} else {
  const { main } = await import('../../src/cli/main.js');
  process.exitCode = await main(argv);
}
