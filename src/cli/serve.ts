import { type Config, loadConfigFile, resolveConfigPath } from '../config/index.js';
import { demoConfig, demoPort, demoWarning, loadDemoSecrets } from '../demo/demo-config.js';
import { startDemoPeers } from '../demo/demo-peers.js';
import { createLogger } from '../observability/logger.js';
import { createService } from '../service/service.js';
import type { Io } from './main.js';

/**
 * `serve`: loads the config (or enters demo mode, starting the bundled provider and API on
 * loopback), starts the service, and stops cleanly on SIGINT/SIGTERM.
 */
export async function serveCommand(flag: string | undefined, io: Io): Promise<number> {
  const logger = createLogger();
  const path = resolveConfigPath({ ...(flag === undefined ? {} : { flag }), env: io.env, cwd: io.cwd });
  let config: Config;
  let stopPeers = async () => {};
  if (path === undefined) {
    demoPort(io.env); // a bad $PORT is refused before anything is created
    const { created, file } = loadDemoSecrets(io.cwd);
    io.err(demoWarning);
    if (created) io.err(`  generated ${file} (mode 0600)\n\n`);
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
  if (path === undefined) io.err(`\n  Open ${config.server.publicUrl}/ and sign in with any name.\n\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info('shutting down');
  await service.close();
  await stopPeers();
  return 0;
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
  const peers = await startDemoPeers({ publicUrl: `http://localhost:${port}`, preferredPort: port + 1 });
  try {
    return { config: demoConfig(cwd, env, peers), stop: peers.close };
  } catch (error) {
    await peers.close();
    throw error;
  }
}
