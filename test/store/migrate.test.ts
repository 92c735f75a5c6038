import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

describe.each(databaseKinds)('migrations on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('is idempotent: a second run applies nothing', async () => {
    expect(await migrateToLatest(store)).toEqual([]);
  });

  it('round-trips epoch milliseconds as numbers', async () => {
    const at = Date.UTC(2026, 10, 29, 12, 0, 0, 123);
    await store.db
      .insertInto('audit_log')
      .values({ at, actor: 'test', action: 'probe', target_type: null, target_id: null, data: '{}' })
      .execute();
    const row = await store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'probe')
      .executeTakeFirstOrThrow();
    expect(row.at).toBe(at);
    expect(typeof row.id).toBe('number');
  });

  it('keeps the audit log append-only', async () => {
    await expect(sql`update audit_log set actor = 'mallory'`.execute(store.db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`delete from audit_log`.execute(store.db)).rejects.toThrow(/append-only/);
  });

  it('allows one connection per user and integration', async () => {
    const base = {
      user_id: 'u1',
      integration_id: 'i1',
      status: 'active' as const,
      scopes: '[]',
      refresh_failures: 0,
      version: 0,
      created_at: 1,
      updated_at: 1,
    };
    await store.db
      .insertInto('connections')
      .values({ ...base, id: 'c1' })
      .execute();
    await expect(
      store.db
        .insertInto('connections')
        .values({ ...base, id: 'c2' })
        .execute(),
    ).rejects.toThrow();
  });

  it('looks connections up by user through the unique index, the only index that names user_id', async () => {
    const byUser = sql`select * from connections where user_id = 'u1' order by created_at`;
    if (kind === 'postgres') {
      await sql`set enable_seqscan = off`.execute(store.db);
      const plan = await sql<Record<string, string>>`explain ${byUser}`.execute(store.db);
      await sql`reset enable_seqscan`.execute(store.db);
      expect(plan.rows.map((r) => Object.values(r)[0]).join('\n')).toContain(
        'connections_user_integration_unique',
      );
      const indexes = await sql<{
        indexname: string;
      }>`select indexname from pg_indexes where tablename = 'connections'`.execute(store.db);
      expect(indexes.rows.map((r) => r.indexname)).not.toContain('connections_by_user');
      // Room on each page for the claim's in-place (HOT) updates.
      const options = await sql<{
        reloptions: string[] | null;
      }>`select reloptions from pg_class where relname = 'connections'`.execute(store.db);
      expect(options.rows[0]?.reloptions).toContain('fillfactor=50');
    } else {
      const plan = await sql<{ detail: string }>`explain query plan ${byUser}`.execute(store.db);
      expect(plan.rows.map((r) => r.detail).join('\n')).toMatch(/USING INDEX sqlite_autoindex_connections/);
      const indexes = await sql<{
        name: string;
      }>`select name from sqlite_master where type = 'index' and tbl_name = 'connections'`.execute(store.db);
      expect(indexes.rows.map((r) => r.name)).not.toContain('connections_by_user');
    }
  });
});
