import { resolve } from 'node:path';
import { loadConfigFile } from '../config/index.js';
import { configKeySource, generateKey, loadKeyring, Sealer } from '../crypto/index.js';
import { findDemoSecrets } from '../demo/demo-config.js';
import { userIdPattern } from '../identity/identity.js';
import { mintToken } from '../identity/jwt.js';
import { AuditLog } from '../notify/audit.js';
import { openStore, waitForStore } from '../store/database.js';
import { rotateKeys } from '../store/key-rotation.js';
import { migrateToLatest } from '../store/migrate.js';
import { systemClock } from '../support/clock.js';
import { findConfigPath, loadCommandConfig, noConfig, UsageError } from './load.js';
import type { Io } from './main.js';
import { progressBar } from './progress.js';

/** `check-config FILE`: prints every problem as `path: message` and exits 1, or says it is valid. */
export async function checkConfigCommand(file: string, io: Io): Promise<number> {
  const config = await loadConfigFile(resolve(io.cwd, file), io.env);
  io.out(
    `${file}: valid (${config.providers.length} providers, ${config.integrations.length} integrations, ${config.mcpServers.length} MCP servers)\n`,
  );
  return 0;
}

/** `migrate`: applies pending migrations and lists them. */
export async function migrateCommand(flag: string | undefined, io: Io): Promise<number> {
  const config = await loadCommandConfig('migrate', flag, io);
  const store = openStore(config.database.url, { cwd: io.cwd });
  try {
    await waitForStore(store, { attempts: 1 });
    const applied = await migrateToLatest(store);
    io.out(applied.length === 0 ? 'database is up to date\n' : `applied: ${applied.join(', ')}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** `keys generate`: a new base64 32-byte key for `encryption.keys`. */
export function keysGenerateCommand(io: Io): number {
  io.out(`${generateKey()}\n`);
  return 0;
}

/** `keys rotate`: re-seals every stored secret under the active key, with progress and a final count. */
export async function keysRotateCommand(flag: string | undefined, io: Io): Promise<number> {
  const config = await loadCommandConfig('keys rotate', flag, io);
  const keyring = await loadKeyring(configKeySource(config.encryption));
  const store = openStore(config.database.url, { cwd: io.cwd });
  try {
    await waitForStore(store, { attempts: 1 });
    await migrateToLatest(store);
    const bar = progressBar(io, 'rotating');
    const result = await rotateKeys(store, keyring, new Sealer(keyring), {
      onProgress: (p) => bar.update(p.done, p.total),
    });
    bar.finish();
    await new AuditLog(store.db, systemClock).record({
      actor: 'cli',
      action: 'keys.rotated',
      data: { activeKey: keyring.activeKeyId, rotated: result.rotated, failed: result.failed.length },
    });
    io.out(
      `re-sealed ${result.rotated} values under key "${keyring.activeKeyId}"` +
        (result.raced > 0 ? `, ${result.raced} rewritten meanwhile by the service` : '') +
        `; ${result.failed.length} failed to open; ${result.remaining} still under an old key\n`,
    );
    for (const f of result.failed)
      io.err(`  cannot open ${f.table}.${f.column} of row ${f.rowId}: ${f.code}\n`);
    if (result.remaining > result.failed.length) {
      io.err('some values were written under an old key during the run: run keys rotate again\n');
    }
    return result.failed.length === 0 && result.remaining === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

/**
 * `token --user ID [--role admin] [--name NAME] [--expires-in 12h]`: an HS256 session JWT signed
 * with `auth.jwt.secret`, or with the secrets of a demo `serve` made in this directory. Refuses
 * what the server would refuse (a user id outside the allowed alphabet, a lifetime that is not
 * positive), so a script never holds a token that cannot work.
 */
export async function tokenCommand(
  values: { user?: string; role?: string; name?: string; config?: string; 'expires-in'?: string },
  io: Io,
): Promise<number> {
  const user = values.user ?? '';
  if (!userIdPattern.test(user)) {
    throw new UsageError('--user must be 1-200 characters of letters, digits and . _ @ : | + -');
  }
  if (values.role !== undefined && values.role !== 'admin') throw new UsageError('--role can only be admin');
  const expiresIn = values['expires-in'] === undefined ? '12h' : parseLifetime(values['expires-in']);
  const signing = await signingFor(values.config, io);
  if (signing === undefined) {
    io.err('nunq-connect: token needs auth.jwt.secret in the config (HS256)\n');
    return 1;
  }
  const token = await mintToken(
    signing.secret,
    {
      sub: user,
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(values.role === undefined ? {} : { role: values.role }),
    },
    {
      expiresIn,
      ...(signing.issuer === undefined ? {} : { issuer: signing.issuer }),
      ...(signing.audience === undefined ? {} : { audience: signing.audience }),
    },
  );
  io.out(`${token}\n`);
  return 0;
}

const maxLifetimeSeconds = 366 * 24 * 3600;
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--expires-in`: a positive whole number of s, m, h or d (at most a year), as seconds for jose. */
function parseLifetime(text: string): string {
  const match = /^(\d{1,9})\s*([smhd])$/.exec(text.trim());
  const seconds = match === null ? 0 : Number(match[1]) * (unitSeconds[match[2]!] ?? 0);
  if (seconds <= 0 || seconds > maxLifetimeSeconds) {
    throw new UsageError(
      '--expires-in must be a positive duration such as 90s, 15m, 12h or 7d (at most 366d)',
    );
  }
  return `${seconds}s`;
}

/** The HS256 secret (and issuer, audience) to sign with: the config's, or a demo's made by serve. */
async function signingFor(
  flag: string | undefined,
  io: Io,
): Promise<{ secret: string; issuer?: string; audience?: string } | undefined> {
  if (findConfigPath(flag, io) === undefined) {
    const demo = findDemoSecrets(io.cwd);
    if (demo === undefined) throw noConfig('token');
    io.err(`nunq-connect: no config file: signing for the demo served from this directory (${demo.file})\n`);
    return { secret: demo.secrets.jwtSecret };
  }
  const config = await loadCommandConfig('token', flag, io);
  const jwt = config.auth.jwt;
  if (jwt === undefined || !('secret' in jwt) || jwt.secret === undefined) return undefined;
  return {
    secret: jwt.secret,
    ...(jwt.issuer === undefined ? {} : { issuer: jwt.issuer }),
    ...(jwt.audience === undefined
      ? {}
      : { audience: Array.isArray(jwt.audience) ? jwt.audience[0] : jwt.audience }),
  };
}
