import { spawn } from 'node:child_process';

/**
 * The V8 flags `serve` runs with: a 32 MiB semi-space, so the ~40 KB of garbage each proxied
 * request leaves dies young instead of being scavenged every few hundred requests (about a
 * quarter less CPU per request, docs/benchmarks.md). V8 reads them only at start-up
 * (`v8.setFlagsFromString` later changes nothing), so the bin re-executes node with them.
 */
export const serveNodeFlags: readonly string[] = ['--max-semi-space-size=32'];

/**
 * Whether the bin should re-execute node for `argv`: only for `serve`, and only if the operator
 * has not set a semi-space size of their own (on the command line or in `NODE_OPTIONS`).
 */
export function needsRelaunch(
  argv: readonly string[],
  execArgv: readonly string[],
  env: Record<string, string | undefined>,
): boolean {
  if (argv[0] !== 'serve') return false;
  const given = (s: string) => /--max[-_]semi[-_]space[-_]size/.test(s);
  return !execArgv.some(given) && !given(env.NODE_OPTIONS ?? '');
}

const forwardedSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `script argv` in a new node process with `serveNodeFlags` (and this process's own node
 * flags), stdio shared, signals passed on; resolves once it has ended, with this process set up
 * to end the same way: the child's exit code, or the signal that killed it raised again here.
 */
export function relaunchWithFlags(
  script: string,
  argv: readonly string[],
  options: { execArgv?: readonly string[]; execPath?: string } = {},
): Promise<void> {
  const execArgv = options.execArgv ?? process.execArgv;
  const child = spawn(
    options.execPath ?? process.execPath,
    [...serveNodeFlags, ...execArgv, script, ...argv],
    {
      stdio: 'inherit',
    },
  );
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const handlers = forwardedSignals.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return new Promise((done) => {
    child.once('error', (error) => {
      process.stderr.write(`nunq-connect: cannot start node: ${error.message}\n`);
      process.exitCode = 1;
      done();
    });
    child.once('exit', (code, signal) => {
      for (const [s, handler] of handlers) process.off(s, handler);
      if (signal !== null) {
        // End as the child did, so a supervisor sees the same signal (128 + n in a shell).
        process.kill(process.pid, signal);
        return;
      }
      process.exitCode = code ?? 1;
      done();
    });
  });
}
