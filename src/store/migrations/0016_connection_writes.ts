import { type Kysely, sql } from 'kysely';
import type { DatabaseKind } from '../database.js';

/**
 * Cheaper connection writes, for refresh storms (docs/benchmarks.md, Refresh storm):
 * - `connections_by_user` goes: the unique index on (user_id, integration_id) already serves every
 *   lookup by user, and each index is one more entry to write whenever a row moves (a refresh
 *   changes `next_refresh_at`, which is indexed, so every refresh moves its row).
 * - PostgreSQL keeps a fifth of each page of `connections` free (fillfactor 80), so that the
 *   scheduler's claim, which sets only the unindexed lease columns, can update a row in place
 *   (a HOT update) instead of writing a new entry into every index. Pages written from now on.
 */
export async function up(db: Kysely<unknown>, kind: DatabaseKind): Promise<void> {
  await db.schema.dropIndex('connections_by_user').execute();
  if (kind === 'postgres') await sql`alter table connections set (fillfactor = 80)`.execute(db);
}
