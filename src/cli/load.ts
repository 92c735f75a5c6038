import { type Config, loadConfigFile, resolveConfigPath } from '../config/index.js';
import type { Io } from './main.js';

/** The command was used wrongly (exit 2): the message says what to do instead. */
export class UsageError extends Error {
  readonly code = 'usage';
}

/**
 * The config file a command other than `serve` runs with, found by the lookup order. Without
 * one it refuses: only `serve` runs demo mode, and nothing here creates files.
 */
export async function loadCommandConfig(command: string, flag: string | undefined, io: Io): Promise<Config> {
  const path = findConfigPath(flag, io);
  if (path === undefined) throw noConfig(command);
  return loadConfigFile(path, io.env);
}

/** The config file's path by the lookup order, or undefined when there is none. */
export function findConfigPath(flag: string | undefined, io: Pick<Io, 'env' | 'cwd'>): string | undefined {
  return resolveConfigPath({ ...(flag === undefined ? {} : { flag }), env: io.env, cwd: io.cwd });
}

/** The refusal for a command that needs a config file and found none. */
export function noConfig(command: string): UsageError {
  return new UsageError(
    `${command} needs a config file (--config FILE, $NUNQ_CONFIG or ./nunq-connect.yaml); only serve runs demo mode without one`,
  );
}
