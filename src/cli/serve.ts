import { type Config, loadConfigFile, resolveConfigPath } from '../config/index.js';
import { demoConfig, demoPort, demoWarning, loadDemoSecrets } from '../demo/demo-config.js';
import { chooseLogFormat, createLogDestination } from '../observability/log-destination.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createService } from '../service/service.js';
import type { Io } from './main.js';

/**
 * `serve`: loads the config (or enters demo mode, starting the bundled provider and API on
 * loopback), starts the service, and stops cleanly on SIGINT/SIGTERM. Logs go to stdout, pretty
 * on a terminal and JSON lines otherwise; nothing else is printed between them.
 */
export async function serveCommand(flag: string | undefined, io: Io): Promise<number> {
  const destination = createLogDestination(chooseLogFormat(io.stdoutIsTTY === true, io.env));
  const logger = createLogger({ destination: destination.stream });
  destination.install(logger);
  const restoreConsole = routeConsoleToLogger(logger, io.isTTY);
  try {
    return await serve(flag, io, logger);
  } finally {
    restoreConsole();
    destination.uninstall();
  }
}

async function serve(flag: string | undefined, io: Io, logger: Logger): Promise<number> {
  // Plain text goes to a terminal only; where stderr is a pipe (often merged with stdout), it is a log line.
  const notice = (text: string) => (io.isTTY ? io.err(text) : logger.info(text.trim().replace(/\s+/g, ' ')));
  const path = resolveConfigPath({ ...(flag === undefined ? {} : { flag }), env: io.env, cwd: io.cwd });
  let config: Config;
  let stopPeers = async () => {};
  if (path === undefined) {
    demoPort(io.env); // a bad $PORT is refused before anything is created
    const { created, file } = loadDemoSecrets(io.cwd);
    if (io.isTTY) io.err(demoWarning);
    else
      logger.warn(
        { demo: true },
        'demo mode: no config file found (--config, $NUNQ_CONFIG, ./nunq-connect.yaml); SQLite and a generated key in ./.nunq/, anyone may sign in at /dev/login; not for real tokens (docs/configuration.md)',
      );
    if (created) notice(`  generated ${file} (mode 0600)\n\n`);
    const demo = await startDemo(io.cwd, io.env);
    stopPeers = demo.stop;
    config = demo.config;
  } else {
    config = await loadConfigFile(path, io.env);
  }
  const service = await createService(config, { logger, demo: path === undefined });
  const address = await service.listen();
  logger.info(
    { address, publicUrl: config.server.publicUrl, database: service.ctx.store.kind },
    'nunq-connect serving',
  );
  if (path === undefined) notice(`\n  Open ${config.server.publicUrl}/ and sign in with any name.\n\n`);

  // `on`, not `once`: a Ctrl-C reaches both the bin's launcher and this process, and the launcher
  // passes it on; a repeated signal must not kill a shutdown in progress.
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await stopped;
  logger.info('shutting down');
  await service.close();
  await stopPeers();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  logger.info('stopped');
  return 0;
}

/**
 * While `serve` runs, `console.log`/`info`/`debug` (a library's notices, such as the demo
 * provider's) become log lines instead of plain text between them, and so do `console.warn`/
 * `error` unless stderr is a terminal. Returns the undo.
 */
function routeConsoleToLogger(logger: Logger, stderrIsTTY: boolean): () => void {
  const terminal: Console = globalThis.console;
  type Method = 'log' | 'info' | 'debug' | 'warn' | 'error';
  const names: Method[] = ['log', 'info', 'debug', ...(stderrIsTTY ? [] : (['warn', 'error'] as const))];
  const saved = names.map((name) => [name, terminal[name]] as const);
  const level = { log: 'info', info: 'info', debug: 'debug', warn: 'warn', error: 'error' } as const;
  for (const name of names) {
    terminal[name] = (...args: unknown[]) =>
      logger[level[name]](
        { source: 'console' },
        args.map((a) => (typeof a === 'string' ? a : String(a))).join(' '),
      );
  }
  return () => {
    for (const [name, original] of saved) terminal[name] = original;
  };
}

/**
 * Demo mode's config and peers: the bundled provider and API on loopback (next to the service's
 * port), wired as the Demo Items integration. Shared by `serve` and the demo-mode test.
 */
export async function startDemo(
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<{ config: Config; stop: () => Promise<void> }> {
  const port = demoPort(env);
  // Loaded only in demo mode: oidc-provider prints notices when it loads, and a real deployment
  // has no use for it.
  const { startDemoPeers } = await import('../demo/demo-peers.js');
  const peers = await startDemoPeers({ publicUrl: `http://localhost:${port}`, preferredPort: port + 1 });
  try {
    return { config: demoConfig(cwd, env, peers), stop: peers.close };
  } catch (error) {
    await peers.close();
    throw error;
  }
}
