import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../../config/index.js';
import { CryptoError, type Keyring, type KeySource, loadKeyring, Sealer } from '../../crypto/index.js';
import { openStore, pingStore, type Store } from '../../store/database.js';
import { migrationStatus } from '../../store/migrate.js';
import { scanSealedValues, type UnreadableValues } from '../../store/sealed-scan.js';
import { type CheckResult, fail, ok, warn } from './report.js';
import { describeError, withDeadline } from './support.js';

/** How long the database may take to answer the first query before it counts as unreachable. */
const databaseDeadlineMs = 10_000;

/**
 * Opens the database read-only in spirit: a SQLite file that does not exist is reported, not
 * created, and nothing is migrated. Returns the open store (for the key check) when it answered.
 */
export async function checkDatabase(
  config: Config,
  cwd: string,
): Promise<{ results: CheckResult[]; store?: Store }> {
  const url = config.database.url;
  if (url.startsWith('sqlite:') && url !== 'sqlite::memory:') {
    const file = resolve(cwd, url.slice('sqlite:'.length));
    if (!existsSync(file)) {
      return {
        results: [
          fail(
            'database',
            `sqlite:${file} does not exist: run \`nunq-connect migrate\` (or start serve) to create it, or fix database.url`,
          ),
        ],
      };
    }
  }
  let store: Store;
  try {
    store = openStore(url, { cwd, poolSize: 2 });
  } catch (error) {
    return { results: [fail('database', `${describeError(error)}: fix database.url`)] };
  }
  try {
    await withDeadline(pingStore(store), databaseDeadlineMs, 'no answer within 10 s');
  } catch (error) {
    await store.close().catch(() => {});
    return {
      results: [
        fail(
          'database',
          `${store.label} does not answer (${describeError(error)}): check that the database runs, is reachable from here, and that database.url is right`,
        ),
      ],
    };
  }
  const results = [ok('database', `${store.label} (${store.kind}) answers`)];
  results.push(await checkMigrations(store));
  return { results, store };
}

async function checkMigrations(store: Store): Promise<CheckResult> {
  let status: Awaited<ReturnType<typeof migrationStatus>>;
  try {
    status = await migrationStatus(store);
  } catch (error) {
    return fail(
      'migrations',
      `cannot read the migration state (${describeError(error)}): check the database user's rights`,
    );
  }
  if (status.unknown.length > 0) {
    return fail(
      'migrations',
      `the database has migrations this version does not know (${status.unknown.join(', ')}): it was upgraded by a newer nunq-connect; run that version, or restore the backup taken before the upgrade`,
    );
  }
  if (status.pending.length > 0) {
    return fail(
      'migrations',
      `${status.pending.length} pending (${status.pending.join(', ')}): run \`nunq-connect migrate\` (serve also applies them at start); doctor applies nothing`,
    );
  }
  return ok('migrations', `all ${status.applied.length} applied, none pending`);
}

/**
 * The keys: the active key loads from its source, and every stored sealed value opens with one
 * of the configured keys. Values still under an older key are a pending rotation (warn); values
 * under a key no longer configured, or that do not open under theirs, are a failure.
 */
export async function checkKeys(source: KeySource, store: Store | undefined): Promise<CheckResult[]> {
  let keyring: Keyring;
  try {
    keyring = await loadKeyring(source);
  } catch (error) {
    if (!(error instanceof CryptoError)) throw error;
    return [fail('keys', `${error.message} (from the ${source.description}): fix encryption in the config`)];
  }
  const loaded = ok(
    'keys',
    `active key "${keyring.activeKeyId}" present (configured: ${keyring.ids().join(', ')}; from the ${source.description})`,
  );
  if (store === undefined)
    return [loaded, warn('keys', 'stored values not checked: the database is not available')];
  let scan: Awaited<ReturnType<typeof scanSealedValues>>;
  try {
    scan = await scanSealedValues(store, new Sealer(keyring));
  } catch (error) {
    return [loaded, warn('keys', `stored values not checked: ${describeError(error)}`)];
  }
  const results = [loaded];
  const opened = Object.values(scan.openedByKey).reduce((a, b) => a + b, 0);
  const older = Object.entries(scan.openedByKey).filter(([id]) => id !== keyring.activeKeyId);
  const unused = keyring
    .ids()
    .filter((id) => id !== keyring.activeKeyId && scan.openedByKey[id] === undefined);
  if (older.length > 0) {
    const n = older.reduce((a, [, count]) => a + count, 0);
    results.push(
      warn(
        'keys',
        `${n} stored value${n === 1 ? ' is' : 's are'} still sealed under an older key (${older.map(([id, c]) => `${id}: ${c}`).join(', ')}): a rotation is pending; run \`nunq-connect keys rotate\` before removing ${older.length === 1 ? 'that key' : 'those keys'}`,
      ),
    );
  }
  const unknownKey = scan.unreadable.filter((u) => u.code === 'key_unknown');
  const broken = scan.unreadable.filter((u) => u.code !== 'key_unknown');
  if (unknownKey.length > 0) {
    const ids = [...new Set(unknownKey.map((u) => u.keyId ?? '?'))];
    results.push(
      fail(
        'keys',
        `${total(unknownKey)} stored value${total(unknownKey) === 1 ? ' is' : 's are'} sealed under ${ids.length === 1 ? 'a key' : 'keys'} no longer configured (${ids.map((id) => `"${id}"`).join(', ')}; ${where(unknownKey)}): put ${ids.length === 1 ? 'that key' : 'those keys'} back in encryption.keys and run \`nunq-connect keys rotate\`; without ${ids.length === 1 ? 'it' : 'them'} those connections must be reconnected`,
      ),
    );
  }
  if (broken.length > 0) {
    results.push(
      fail(
        'keys',
        `${total(broken)} stored value${total(broken) === 1 ? '' : 's'} do not open under the key they name (${where(broken)}; ${[...new Set(broken.map((u) => u.code))].join(', ')}): a key id now carries other key material, or the values were tampered with or moved; check encryption.keys against your key archive`,
      ),
    );
  }
  if (unknownKey.length === 0 && broken.length === 0) {
    results.push(
      ok(
        'keys',
        `all ${opened} stored sealed value${opened === 1 ? '' : 's'} open with the configured keys${unused.length > 0 ? ` (no value uses ${unused.join(', ')} any more: ${unused.length === 1 ? 'it' : 'they'} may be removed after keeping ${unused.length === 1 ? 'it' : 'them'} for your backups)` : ''}`,
      ),
    );
  }
  return results;
}

function total(groups: readonly UnreadableValues[]): number {
  return groups.reduce((a, g) => a + g.count, 0);
}

/** `connections.access_token_sealed: 2, providers.client_secret_sealed: 1`. */
function where(groups: readonly UnreadableValues[]): string {
  const counts = new Map<string, number>();
  for (const g of groups)
    counts.set(`${g.table}.${g.column}`, (counts.get(`${g.table}.${g.column}`) ?? 0) + g.count);
  return [...counts].map(([at, n]) => `${at}: ${n}`).join(', ');
}
