import { DecryptionError, type DecryptionErrorCode, type Sealer } from '../crypto/index.js';
import type { Store } from './database.js';
import { sealedBatches } from './sealed-columns.js';

/** Values of one column that did not open, grouped by the key they name and why. */
export interface UnreadableValues {
  table: string;
  column: string;
  /** The key id the value names; undefined when the value is too malformed to name one. */
  keyId: string | undefined;
  code: DecryptionErrorCode;
  count: number;
}

/** What a scan of every sealed value found; counts and key ids only, never a value. */
export interface SealedScan {
  /** Values that opened, by the id of the key that sealed them. */
  openedByKey: Record<string, number>;
  unreadable: UnreadableValues[];
}

/**
 * Opens every stored sealed value (each sealed column, through `sealedBatches`, read only) to
 * find out which keys the database needs and whether any value cannot be opened with the keys
 * the sealer holds. The plaintext of each value is dropped at once.
 */
export async function scanSealedValues(
  store: Store,
  sealer: Sealer,
  options: { batchSize?: number } = {},
): Promise<SealedScan> {
  const openedByKey: Record<string, number> = {};
  const unreadable = new Map<string, UnreadableValues>();
  for await (const { table, column, rows } of sealedBatches(store.db, {
    batchSize: options.batchSize ?? 500,
  })) {
    for (const row of rows) {
      try {
        sealer.open(row.value, { table, rowId: row.id, field: column });
        const keyId = keyIdOf(row.value);
        openedByKey[keyId] = (openedByKey[keyId] ?? 0) + 1;
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
        const key = `${table}|${column}|${error.keyId ?? ''}|${error.code}`;
        const group = unreadable.get(key) ?? {
          table,
          column,
          keyId: error.keyId,
          code: error.code,
          count: 0,
        };
        group.count += 1;
        unreadable.set(key, group);
      }
    }
  }
  return { openedByKey, unreadable: [...unreadable.values()] };
}

/** The key id of a value that opened (so it is well formed): the text between `v1.` and the next dot. */
function keyIdOf(sealed: string): string {
  return sealed.slice(3, sealed.indexOf('.', 3));
}
