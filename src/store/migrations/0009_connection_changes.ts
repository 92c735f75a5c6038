import { type Kysely, sql } from 'kysely';
import type { DatabaseKind } from '../database.js';

/**
 * A change feed for the per-instance connection row cache: the database itself appends a row to
 * `connection_changes` whenever a connection is deleted or changes in a way the hot path uses
 * (status, tokens, owner, version), so no writer can forget to announce it. Lease bookkeeping
 * (`lease_owner`, `lease_until`) and scheduling columns announce nothing. Every instance polls
 * the feed and evicts what changed (`src/connections/connection-changes.ts`).
 */
export async function up(db: Kysely<unknown>, kind: DatabaseKind): Promise<void> {
  await db.schema
    .createTable('connection_changes')
    .addColumn('seq', kind === 'postgres' ? 'bigserial' : 'integer', (c) => c.primaryKey().notNull())
    .addColumn('connection_id', 'text', (c) => c.notNull())
    .addColumn('changed_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('connection_changes_by_age')
    .on('connection_changes')
    .columns(['changed_at'])
    .execute();

  const changed = (o: string, n: string) =>
    `${o}.version IS DISTINCT FROM ${n}.version OR ${o}.status IS DISTINCT FROM ${n}.status OR ` +
    `${o}.user_id IS DISTINCT FROM ${n}.user_id OR ` +
    `${o}.access_token_sealed IS DISTINCT FROM ${n}.access_token_sealed OR ` +
    `${o}.refresh_token_sealed IS DISTINCT FROM ${n}.refresh_token_sealed OR ` +
    `${o}.access_token_expires_at IS DISTINCT FROM ${n}.access_token_expires_at`;

  if (kind === 'postgres') {
    await sql`create or replace function connection_changed() returns trigger language plpgsql as $$
      begin
        insert into connection_changes (connection_id, changed_at)
          values (coalesce(new.id, old.id), (extract(epoch from clock_timestamp()) * 1000)::bigint);
        return null;
      end $$`.execute(db);
    await sql
      .raw(
        `create trigger connections_changed after update on connections for each row
         when (${changed('old', 'new')}) execute function connection_changed()`,
      )
      .execute(db);
    await sql`create trigger connections_deleted after delete on connections
      for each row execute function connection_changed()`.execute(db);
    return;
  }
  const nowMs = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`;
  // SQLite spells IS DISTINCT FROM as IS NOT.
  await sql
    .raw(
      `CREATE TRIGGER connections_changed AFTER UPDATE ON connections
       WHEN ${changed('OLD', 'NEW').replaceAll('IS DISTINCT FROM', 'IS NOT')}
       BEGIN INSERT INTO connection_changes (connection_id, changed_at) VALUES (NEW.id, ${nowMs}); END`,
    )
    .execute(db);
  await sql
    .raw(
      `CREATE TRIGGER connections_deleted AFTER DELETE ON connections
       BEGIN INSERT INTO connection_changes (connection_id, changed_at) VALUES (OLD.id, ${nowMs}); END`,
    )
    .execute(db);
}
