import { type Config, loadConfigFile, resolveConfigPath } from '../config/index.js';
import { demoConfig } from '../demo/demo-config.js';
import type { Io } from './main.js';

/** The config a command runs with: the file found by the lookup order, or demo mode's. */
export async function loadCommandConfig(
  flag: string | undefined,
  io: Io,
): Promise<{ config: Config; demo: boolean }> {
  const path = resolveConfigPath({ ...(flag === undefined ? {} : { flag }), env: io.env, cwd: io.cwd });
  if (path === undefined) return { config: demoConfig(io.cwd, io.env), demo: true };
  return { config: await loadConfigFile(path, io.env), demo: false };
}
