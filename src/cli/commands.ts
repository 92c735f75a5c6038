import { resolve } from 'node:path';
import { loadConfigFile } from '../config/index.js';
import { generateKey, Keyring, Sealer } from '../crypto/index.js';
import { mintToken } from '../identity/jwt.js';
import { AuditLog } from '../notify/audit.js';
import { openStore } from '../store/database.js';
import { rotateKeys } from '../store/key-rotation.js';
import { migrateToLatest } from '../store/migrate.js';
import { systemClock } from '../support/clock.js';
import { loadCommandConfig } from './load.js';
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
  const { config } = await loadCommandConfig(flag, io);
  const store = openStore(config.database.url, { cwd: io.cwd });
  try {
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
  const { config } = await loadCommandConfig(flag, io);
  const keyring = Keyring.fromConfig({
    activeKeyId: config.encryption.activeKey,
    keys: config.encryption.keys,
  });
  const store = openStore(config.database.url, { cwd: io.cwd });
  try {
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

/** `token --user ID [--role admin]`: an HS256 session JWT signed with `auth.jwt.secret`. */
export async function tokenCommand(
  values: { user?: string; role?: string; name?: string; config?: string; 'expires-in'?: string },
  io: Io,
): Promise<number> {
  const { config } = await loadCommandConfig(values.config, io);
  const jwt = config.auth.jwt;
  if (jwt === undefined || !('secret' in jwt) || jwt.secret === undefined) {
    io.err('nunq-connect: token needs auth.jwt.secret in the config (HS256)\n');
    return 1;
  }
  const token = await mintToken(
    jwt.secret,
    {
      sub: values.user!,
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(values.role === undefined ? {} : { role: values.role }),
    },
    {
      ...(values['expires-in'] === undefined ? {} : { expiresIn: values['expires-in'] }),
      ...(jwt.issuer === undefined ? {} : { issuer: jwt.issuer }),
      ...(jwt.audience === undefined
        ? {}
        : { audience: Array.isArray(jwt.audience) ? jwt.audience[0] : jwt.audience }),
    },
  );
  io.out(`${token}\n`);
  return 0;
}
