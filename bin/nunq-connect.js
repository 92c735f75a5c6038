#!/usr/bin/env node
// `serve` needs V8 flags that only take effect at start-up: node is re-executed with them (see
// src/cli/node-flags.ts); every other command runs here.
import { fileURLToPath } from 'node:url';
import { needsRelaunch, relaunchWithFlags } from '../dist/cli/node-flags.js';

const argv = process.argv.slice(2);
if (needsRelaunch(argv, process.execArgv, process.env)) {
  await relaunchWithFlags(fileURLToPath(import.meta.url), argv);
} else {
  const { main } = await import('../dist/cli/main.js');
  process.exitCode = await main(argv);
}
