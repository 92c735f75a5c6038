import type { Expression, Kysely, SqlBool } from 'kysely';
import type { Database } from './types.js';

/**
 * Every column that holds a sealed value, with the column that identifies its row. Key rotation
 * walks this list, and the tests scan the database for plaintext with it: a new sealed column
 * must be added here. The AAD of a value is (table, row id, column name).
 */
export const sealedColumns = [
  { table: 'providers', idColumn: 'id', columns: ['client_secret_sealed'] },
  { table: 'integrations', idColumn: 'id', columns: ['client_secret_sealed'] },
  {
    table: 'connections',
    idColumn: 'id',
    columns: ['access_token_sealed', 'refresh_token_sealed', 'id_token_sealed'],
  },
  { table: 'pending_authorizations', idColumn: 'state_hash', columns: ['code_verifier_sealed'] },
  { table: 'oauth_clients', idColumn: 'id', columns: ['client_secret_sealed'] },
  { table: 'webhook_endpoints', idColumn: 'id', columns: ['secret_sealed'] },
  { table: 'revocations', idColumn: 'id', columns: ['token_sealed'] },
  { table: 'pending_confirmations', idColumn: 'id', columns: ['tokens_sealed'] },
  { table: 'mcp_registrations', idColumn: 'id', columns: ['registration_sealed'] },
] as const;

export type SealedTable = (typeof sealedColumns)[number]['table'];

type DynamicDb = Kysely<Record<string, Record<string, string | null>>>;

/** One batch of a sealed column: its rows' ids and sealed values, in primary-key order. */
export interface SealedBatch {
  table: SealedTable;
  column: string;
  rows: Array<{ id: string; value: string }>;
}

/**
 * Walks every sealed value of {@link sealedColumns}, column by column, in batches of `batchSize`
 * in primary-key order (keyset paging, so rows written meanwhile never shift a page), optionally
 * only those `where` keeps. Key rotation and the keys scan both read the database this way.
 */
export async function* sealedBatches(
  db: Kysely<Database>,
  options: { batchSize: number; where?: (column: string) => Expression<SqlBool> },
): AsyncGenerator<SealedBatch> {
  const dynamic = db as unknown as DynamicDb;
  for (const t of sealedColumns) {
    for (const column of t.columns) {
      let after: string | null = null;
      for (;;) {
        let q = dynamic
          .selectFrom(t.table)
          .select([`${t.idColumn} as id`, `${column} as value`])
          .where(column, 'is not', null)
          .orderBy(t.idColumn)
          .limit(options.batchSize);
        if (options.where !== undefined) q = q.where(options.where(column));
        if (after !== null) q = q.where(t.idColumn, '>', after);
        const rows = (await q.execute()) as Array<{ id: string; value: string }>;
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.id;
        yield { table: t.table, column, rows };
      }
    }
  }
}
