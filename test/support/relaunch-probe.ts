/**
 * The bin's launcher around a probe instead of the service: run as
 * `node --import tsx test/support/relaunch-probe.ts serve <mode>`. The relaunched process prints
 * `READY <execArgv as JSON>` and then, by mode: `exit:N` exits with N; `wait` waits for SIGTERM
 * (counting SIGINTs: the launcher passes signals on) and exits 0; `kill:SIG` kills itself with SIG.
 */
import { fileURLToPath } from 'node:url';
import { needsRelaunch, relaunchWithFlags } from '../../src/cli/node-flags.js';

const argv = process.argv.slice(2);
if (needsRelaunch(argv, process.execArgv, process.env)) {
  await relaunchWithFlags(fileURLToPath(import.meta.url), argv);
} else {
  const mode = argv[1] ?? 'exit:0';
  process.stdout.write(`READY ${JSON.stringify(process.execArgv)}\n`);
  if (mode.startsWith('exit:')) process.exitCode = Number(mode.slice(5));
  else if (mode.startsWith('kill:')) process.kill(process.pid, mode.slice(5) as NodeJS.Signals);
  else {
    let interrupts = 0;
    process.on('SIGINT', () => {
      interrupts++;
    });
    const keepAlive = setInterval(() => {}, 1000);
    process.once('SIGTERM', () => {
      process.stdout.write(`TERM after ${interrupts} SIGINT\n`);
      clearInterval(keepAlive);
      process.exitCode = 0;
      process.removeAllListeners('SIGINT');
    });
  }
}
