import { type Kysely, sql } from 'kysely';
import { DecryptionError, type Keyring, type Sealer } from '../crypto/index.js';
import type { Store } from './database.js';
import { type SealedTable, sealedBatches, sealedColumns } from './sealed-columns.js';
import type { Database } from './types.js';

export interface RotationProgress {
  table: string;
  column: string;
  /** Values re-sealed so far, over all columns. */
  done: number;
  /** Values under an old key when the run started, over all columns. */
  total: number;
}

export interface RotationResult {
  /** Values re-sealed under the active key. */
  rotated: number;
  /** Values changed by the service during the run (already re-sealed by it); nothing to do. */
  raced: number;
  /** Values that did not open (tampered, moved, unknown key): left untouched and reported. */
  failed: Array<{ table: string; column: string; rowId: string; code: string }>;
  /** Values still under an old key after the run (written meanwhile by an instance on the old config). */
  remaining: number;
}

type DynamicDb = Kysely<Record<string, Record<string, string | null>>>;

const activePrefix = (keyring: Keyring): string => `v1.${keyring.activeKeyId}.`;

/** `column` holds a value not sealed under the active key (exact prefix compare: LIKE would treat `_` as a wildcard). */
const notUnderActiveKey = (column: string, keyring: Keyring) => {
  const prefix = activePrefix(keyring);
  return sql<boolean>`substr(${sql.ref(column)}, 1, ${prefix.length}) <> ${prefix}`;
};

/** Counts sealed values not under the active key, per column. */
export async function countStaleValues(store: Store, keyring: Keyring): Promise<number> {
  const db = store.db as unknown as DynamicDb;
  let total = 0;
  for (const t of sealedColumns) {
    for (const column of t.columns) {
      const row = await db
        .selectFrom(t.table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where(column, 'is not', null)
        .where(notUnderActiveKey(column, keyring))
        .executeTakeFirstOrThrow();
      total += Number(row.n);
    }
  }
  return total;
}

/**
 * Re-seals every stored secret under the active key, in batches, while the service keeps
 * serving: each write is a compare-and-swap on the old ciphertext, so a value the service
 * rewrote meanwhile is left alone. Walks each column in primary-key order once; running it
 * again resumes, since only values under an old key are selected.
 */
export async function rotateKeys(
  store: Store,
  keyring: Keyring,
  sealer: Sealer,
  options: { batchSize?: number; onProgress?: (p: RotationProgress) => void } = {},
): Promise<RotationResult> {
  const total = await countStaleValues(store, keyring);
  const result: RotationResult = { rotated: 0, raced: 0, failed: [], remaining: 0 };
  let done = 0;

  const batches = sealedBatches(store.db, {
    batchSize: options.batchSize ?? 500,
    where: (column) => notUnderActiveKey(column, keyring),
  });
  for await (const { table, column, rows } of batches) {
    const updates: Array<{ id: string; old: string; next: string }> = [];
    for (const row of rows) {
      const ctx = { table, rowId: row.id, field: column };
      try {
        updates.push({ id: row.id, old: row.value, next: sealer.seal(sealer.open(row.value, ctx), ctx) });
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
        result.failed.push({ table, column, rowId: row.id, code: error.code });
      }
    }
    // One compare-and-swap statement per batch: a value the service rewrote meanwhile is left alone.
    const swapped =
      updates.length === 0 ? 0 : await swapBatch(store, table, idColumnOf(table), column, updates);
    result.rotated += swapped;
    result.raced += updates.length - swapped;
    done += rows.length;
    options.onProgress?.({ table, column, done: Math.min(done, total), total });
  }
  result.remaining = await countStaleValues(store, keyring);
  return result;
}

/**
 * `WITH v(id, old, next) AS (VALUES …) UPDATE t SET col = v.next FROM v WHERE t.id = v.id AND
 * t.col = v.old`: the same on PostgreSQL and SQLite (3.33+), one round trip per batch.
 */
async function swapBatch(
  store: Store,
  table: string,
  idColumn: string,
  column: string,
  updates: Array<{ id: string; old: string; next: string }>,
): Promise<number> {
  const values = sql.join(updates.map((u) => sql`(${u.id}, ${u.old}, ${u.next})`));
  const r = await sql`with v(id, old, next) as (values ${values})
    update ${sql.table(table)} set ${sql.ref(column)} = v.next from v
    where ${sql.ref(`${table}.${idColumn}`)} = v.id and ${sql.ref(`${table}.${column}`)} = v.old`.execute(
    store.db,
  );
  return Number(r.numAffectedRows ?? 0n);
}

/** Reads a column raw (for tests and diagnostics): no decryption. */
export async function rawColumn(db: Kysely<Database>, table: string, column: string): Promise<unknown[]> {
  const r = await sql`select ${sql.ref(column)} as v from ${sql.table(table)}`.execute(db);
  return r.rows.map((row) => (row as { v: unknown }).v);
}

function idColumnOf(table: SealedTable): string {
  return sealedColumns.find((t) => t.table === table)!.idColumn;
}
