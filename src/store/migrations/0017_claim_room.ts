import { type Kysely, sql } from 'kysely';
import type { DatabaseKind } from '../database.js';

/**
 * PostgreSQL keeps half of each page of `connections` free (fillfactor 50, from 80). A connection
 * row carries sealed tokens and is large: at 80 a page kept room for about one new row version,
 * so in a refresh storm only about one claim in ten was an in-place (HOT) update, and the rest
 * wrote a new entry into every index. At 50 the PostgreSQL server's CPU per refresh in a
 * three-instance storm fell from 245–390 to 195–212 µs (docs/benchmarks.md, Refresh storm). The
 * table takes more room on disk. Pages written from now on (docs/operations.md, Migrations).
 */
export async function up(db: Kysely<unknown>, kind: DatabaseKind): Promise<void> {
  if (kind === 'postgres') await sql`alter table connections set (fillfactor = 50)`.execute(db);
}
