import type { Kysely, Updateable } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConnectionCache } from '../../src/connections/connection-cache.js';
import { ConnectionChangeFeed, pruneConnectionChanges } from '../../src/connections/connection-changes.js';
import type { Store } from '../../src/store/database.js';
import { ConnectionRepository } from '../../src/store/repos/connections.js';
import type { ConnectionsTable, Database } from '../../src/store/types.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const base = {
  user_id: 'alice',
  integration_id: 'items',
  status: 'active' as const,
  scopes: '[]',
  access_token_sealed: 'v1.k1.a',
  refresh_failures: 0,
  version: 0,
  created_at: 1,
  updated_at: 1,
};

async function changes(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('connection_changes').select('connection_id').orderBy('seq').execute();
  return rows.map((r) => r.connection_id);
}

describe.each(databaseKinds)('the connection change feed, on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });
  beforeEach(async () => {
    await store.db.deleteFrom('connections').execute();
    await store.db.deleteFrom('connection_changes').execute();
  });

  it('is written by the database for every change the hot path uses, and not for lease bookkeeping', async () => {
    await store.db
      .insertInto('connections')
      .values({ ...base, id: 'c1' })
      .execute();
    const db = store.db;
    const update = (set: Updateable<ConnectionsTable>) =>
      db.updateTable('connections').set(set).where('id', '=', 'c1').execute();

    await update({ lease_owner: 'instance-a', lease_until: 123 });
    await update({ next_refresh_at: 456, refresh_failures: 1, updated_at: 2 });
    expect(await changes(db)).toEqual([]);

    await update({ status: 'needs_reauth' });
    await update({ access_token_sealed: 'v1.k1.b' });
    await update({ version: 1 });
    await update({ access_token_expires_at: 789 });
    await db.deleteFrom('connections').where('id', '=', 'c1').execute();
    expect(await changes(db)).toEqual(['c1', 'c1', 'c1', 'c1', 'c1']);
  });

  it('reports each change once, only those after its first poll', async () => {
    await store.db
      .insertInto('connections')
      .values([
        { ...base, id: 'c1' },
        { ...base, id: 'c2', user_id: 'bob' },
      ])
      .execute();
    await store.db.updateTable('connections').set({ version: 1 }).where('id', '=', 'c1').execute();
    const seen: string[] = [];
    const feed = new ConnectionChangeFeed({ db: store.db, onChange: (id) => seen.push(id) });
    expect(feed.lastSuccessfulPollStart).toBe(Number.NEGATIVE_INFINITY);
    expect(await feed.poll()).toBe(0); // the first poll only finds where the feed stands
    expect(Number.isFinite(feed.lastSuccessfulPollStart)).toBe(true);

    await store.db.updateTable('connections').set({ version: 2 }).where('id', '=', 'c1').execute();
    await store.db.deleteFrom('connections').where('id', '=', 'c2').execute();
    expect(await feed.poll()).toBe(2);
    expect(await feed.poll()).toBe(0);
    expect(seen).toEqual(['c1', 'c2']);
  });

  it('prunes old changes but always keeps the newest', async () => {
    await store.db
      .insertInto('connections')
      .values({ ...base, id: 'c1' })
      .execute();
    for (const version of [1, 2, 3]) {
      await store.db.updateTable('connections').set({ version }).where('id', '=', 'c1').execute();
    }
    expect(await pruneConnectionChanges(store.db, Date.now() + 2 * 60 * 60_000)).toBe(2);
    expect(await changes(store.db)).toEqual(['c1']);
    expect(await pruneConnectionChanges(store.db, Date.now())).toBe(0);
  });

  it('lets the row cache keep a row while its polls succeed, and evicts what another instance changed', async () => {
    await store.db
      .insertInto('connections')
      .values({ ...base, id: 'c1' })
      .execute();
    const repo = new ConnectionRepository(store.db);
    let now = 0;
    let loads = 0;
    const feed = new ConnectionChangeFeed({
      db: store.db,
      onChange: (id) => cache.invalidate(id),
      now: () => now,
    });
    const cache: ConnectionCache = new ConnectionCache({
      load: (id) => {
        loads++;
        return repo.findById(id);
      },
      feed,
      now: () => now,
    });
    await feed.poll();
    expect((await cache.findForUser('alice', 'c1'))?.access_token_sealed).toBe('v1.k1.a');
    for (const step of [500, 500, 500, 60_000]) {
      now += step;
      await feed.poll();
      await cache.findForUser('alice', 'c1');
    }
    expect(loads).toBe(1); // served for a minute, not re-read every second

    // Another instance (a plain UPDATE here) refreshes the token, then disconnects.
    await store.db
      .updateTable('connections')
      .set({ access_token_sealed: 'v1.k1.b', version: 1 })
      .where('id', '=', 'c1')
      .execute();
    now += 250;
    await feed.poll();
    expect((await cache.findForUser('alice', 'c1'))?.access_token_sealed).toBe('v1.k1.b');
    expect(loads).toBe(2);
    await store.db.deleteFrom('connections').where('id', '=', 'c1').execute();
    now += 250;
    await feed.poll();
    expect(await cache.findForUser('alice', 'c1')).toBeUndefined();
  });

  it('falls back to reading a row every second when the polls stop succeeding', async () => {
    await store.db
      .insertInto('connections')
      .values({ ...base, id: 'c1' })
      .execute();
    const repo = new ConnectionRepository(store.db);
    let now = 0;
    let loads = 0;
    const feed = new ConnectionChangeFeed({ db: store.db, onChange: () => {}, now: () => now });
    const cache = new ConnectionCache({
      load: (id) => {
        loads++;
        return repo.findById(id);
      },
      feed,
      now: () => now,
    });
    await feed.poll();
    await cache.findForUser('alice', 'c1');
    now += 1_500; // no poll for 1.5 s: the feed may have missed a change
    await cache.findForUser('alice', 'c1');
    expect(loads).toBe(2);
  });
});

describe('the connection change feed, on postgres, when transactions commit out of order', () => {
  let store: Store;
  let database: TestDatabase;
  beforeAll(async () => {
    ({ store, database } = await createTestStore('postgres'));
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('still reports the change that took the earlier number and committed last', async () => {
    await store.db
      .insertInto('connections')
      .values([
        { ...base, id: 'early' },
        { ...base, id: 'late', user_id: 'bob' },
      ])
      .execute();
    const seen: string[] = [];
    const feed = new ConnectionChangeFeed({ db: store.db, onChange: (id) => seen.push(id) });
    await feed.poll();

    const slow = new pg.Client({ connectionString: database.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query(`update connections set version = 1 where id = 'early'`); // takes seq n
      await store.db.updateTable('connections').set({ version: 1 }).where('id', '=', 'late').execute(); // n + 1
      await feed.poll();
      expect(seen).toEqual(['late']);
      await slow.query('commit');
    } finally {
      await slow.end();
    }
    await feed.poll();
    expect(seen).toEqual(['late', 'early']);
    await feed.poll();
    expect(seen).toEqual(['late', 'early']);
  });
});
