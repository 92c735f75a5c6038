/**
 * The grouped refresh write (store/repos/refresh-writes.ts), on both engines: writes that arrive
 * together go out as one statement, and each row still gets exactly what a lone fenced UPDATE
 * would have given it: its own version fence, its own lease release, the old refresh token,
 * ID token and scopes kept when the provider sent none, and its own answer.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/database.js';
import { type RefreshedTokenColumns, RefreshWrites } from '../../src/store/repos/refresh-writes.js';
import type { ConnectionRow, Database } from '../../src/store/types.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

/** Counts the statements that reach the database through the handle it is plugged into. */
function statementCounter(): KyselyPlugin & { count: number; sql: string[] } {
  const plugin = {
    count: 0,
    sql: [] as string[],
    transformQuery(args: PluginTransformQueryArgs) {
      plugin.count++;
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs) {
      return args.result;
    },
  };
  return plugin;
}

const t0 = 1_700_000_000_000;

function columns(tag: string, extra: Partial<RefreshedTokenColumns> = {}): RefreshedTokenColumns {
  return {
    access_token_sealed: `access-${tag}`,
    token_type: 'Bearer',
    access_token_expires_at: t0 + 3_600_000,
    last_refreshed_at: t0 + 1,
    next_refresh_at: t0 + 3_000_000,
    ...extra,
  };
}

describe.each(databaseKinds)('grouped refresh writes on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  async function insert(overrides: Partial<ConnectionRow> = {}): Promise<string> {
    const id = randomUUID();
    await store.db
      .insertInto('connections')
      .values({
        id,
        user_id: `user-${id}`,
        integration_id: 'demo',
        status: 'active',
        status_reason: null,
        account_id: null,
        account_name: null,
        account_email: null,
        scopes: '["old"]',
        access_token_sealed: 'access-old',
        refresh_token_sealed: 'refresh-old',
        id_token_sealed: 'id-old',
        token_type: 'Bearer',
        access_token_expires_at: t0,
        last_refreshed_at: null,
        next_refresh_at: t0,
        refresh_failures: 3,
        lease_owner: 'me',
        lease_until: t0 + 30_000,
        lease_taken_from: null,
        refresh_not_before: t0 + 5,
        issuer: null,
        api_base_url: null,
        version: 7,
        created_at: t0,
        updated_at: t0,
        ...overrides,
      })
      .execute();
    return id;
  }

  const read = (id: string) =>
    store.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();

  function writesCounting(options = {}): {
    writes: RefreshWrites;
    counter: ReturnType<typeof statementCounter>;
  } {
    const counter = statementCounter();
    const db = store.db.withPlugin(counter) as Kysely<Database>;
    return { writes: new RefreshWrites(db, store.kind, options), counter };
  }

  it('writes writes that arrive together in one statement, each row with its own values', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, () => insert()));
    const { writes, counter } = writesCounting({ windowMs: 20 });
    const written = await Promise.all(
      ids.map((id, i) =>
        writes.write(id, 7, 'me', columns(String(i), { refresh_token_sealed: `refresh-${i}` }), t0 + 10 + i),
      ),
    );
    expect(written).toEqual([true, true, true, true, true]);
    expect(counter.count).toBe(1);
    for (const [i, id] of ids.entries()) {
      const row = (await read(id))!;
      expect(row.access_token_sealed).toBe(`access-${i}`);
      expect(row.refresh_token_sealed).toBe(`refresh-${i}`);
      expect(Number(row.version)).toBe(8);
      expect(Number(row.updated_at)).toBe(t0 + 10 + i);
      expect(Number(row.access_token_expires_at)).toBe(t0 + 3_600_000);
      expect(Number(row.next_refresh_at)).toBe(t0 + 3_000_000);
      expect(Number(row.last_refreshed_at)).toBe(t0 + 1);
      // The failure state is cleared and this owner's lease released.
      expect(Number(row.refresh_failures)).toBe(0);
      expect(row.refresh_not_before).toBeNull();
      expect(row.lease_owner).toBeNull();
      expect(row.lease_until).toBeNull();
    }
  });

  it('fences each row by its own version: a row changed meanwhile is left alone and told so', async () => {
    const kept = await insert();
    const moved = await insert({ version: 8, access_token_sealed: 'access-reconnected' });
    const { writes, counter } = writesCounting({ windowMs: 20 });
    const [a, b] = await Promise.all([
      writes.write(kept, 7, 'me', columns('a'), t0 + 10),
      writes.write(moved, 7, 'me', columns('b'), t0 + 10),
    ]);
    expect([a, b]).toEqual([true, false]);
    expect(counter.count).toBe(1);
    const untouched = (await read(moved))!;
    expect(untouched.access_token_sealed).toBe('access-reconnected');
    expect(Number(untouched.version)).toBe(8);
    // A deleted row too: false, nothing written.
    const gone = await insert();
    await store.db.deleteFrom('connections').where('id', '=', gone).execute();
    expect(await writes.write(gone, 7, 'me', columns('c'), t0 + 10)).toBe(false);
  });

  it('keeps the refresh token, ID token and scopes the provider did not send, and sets those it did', async () => {
    const keep = await insert();
    const replace = await insert();
    const { writes } = writesCounting({ windowMs: 20 });
    await Promise.all([
      writes.write(keep, 7, 'me', columns('k'), t0 + 10),
      writes.write(
        replace,
        7,
        'me',
        columns('r', { refresh_token_sealed: 'refresh-new', id_token_sealed: 'id-new', scopes: '["a","b"]' }),
        t0 + 10,
      ),
    ]);
    const k = (await read(keep))!;
    expect([k.refresh_token_sealed, k.id_token_sealed, k.scopes]).toEqual([
      'refresh-old',
      'id-old',
      '["old"]',
    ]);
    const r = (await read(replace))!;
    expect([r.refresh_token_sealed, r.id_token_sealed, r.scopes]).toEqual([
      'refresh-new',
      'id-new',
      '["a","b"]',
    ]);
  });

  it('writes a missing expiry and a cleared schedule as null', async () => {
    const id = await insert();
    const { writes } = writesCounting();
    expect(
      await writes.write(
        id,
        7,
        'me',
        columns('n', { access_token_expires_at: null, next_refresh_at: null }),
        t0 + 10,
      ),
    ).toBe(true);
    const row = (await read(id))!;
    expect(row.access_token_expires_at).toBeNull();
    expect(row.next_refresh_at).toBeNull();
  });

  it("releases only the writer's own lease: a lease another instance took over stays", async () => {
    const taken = await insert({ lease_owner: 'other', lease_until: t0 + 60_000, lease_taken_from: 'me' });
    const { writes } = writesCounting();
    expect(await writes.write(taken, 7, 'me', columns('t'), t0 + 10)).toBe(true);
    const row = (await read(taken))!;
    expect(row.lease_owner).toBe('other');
    expect(Number(row.lease_until)).toBe(t0 + 60_000);
    expect(row.lease_taken_from).toBe('me');
  });

  it('splits at maxRows: a full batch goes at once, the rest when its window is up', async () => {
    const ids = await Promise.all(Array.from({ length: 7 }, () => insert()));
    const { writes, counter } = writesCounting({ windowMs: 300, maxRows: 3 });
    const started = Date.now();
    const settledAt: number[] = [];
    const written = await Promise.all(
      ids.map((id, i) =>
        writes.write(id, 7, 'me', columns(String(i)), t0 + 10).then((ok) => {
          settledAt[i] = Date.now() - started;
          return ok;
        }),
      ),
    );
    expect(written.every(Boolean)).toBe(true);
    expect(counter.count).toBe(3);
    // Two full statements without waiting; the seventh write waited out its own window.
    expect(Math.max(...settledAt.slice(0, 6))).toBeLessThan(250);
    expect(settledAt[6]).toBeGreaterThanOrEqual(290);
  });

  it('lets what queued behind a statement wait for its window, so that the next statement carries more', async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => insert()));
    const { writes, counter } = writesCounting({ windowMs: 300, maxRows: 2 });
    const first = ids.slice(0, 3).map((id, i) => writes.write(id, 7, 'me', columns(String(i)), t0 + 10));
    // The third write queued behind the first (full) statement; a fourth comes 100 ms later and
    // still finds it waiting, so both go in one statement.
    await new Promise((r) => setTimeout(r, 100));
    expect(counter.count).toBe(1);
    const late = writes.write(ids[3]!, 7, 'me', columns('late'), t0 + 10);
    expect(await Promise.all([...first, late])).toEqual([true, true, true, true]);
    expect(counter.count).toBe(2);
  });

  it('sends the waiting writes with one whose window is shorter (an on-demand refresh joins a scheduled batch)', async () => {
    const [scheduled, onDemand] = await Promise.all([insert(), insert()]);
    const { writes, counter } = writesCounting({ windowMs: 20 });
    const started = Date.now();
    const waiting = writes.write(scheduled, 7, 'me', columns('scheduled'), t0 + 10, 5_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(counter.count).toBe(0);
    const urgent = writes.write(onDemand, 7, 'me', columns('on-demand'), t0 + 10);
    expect(await Promise.all([waiting, urgent])).toEqual([true, true]);
    expect(counter.count).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('holds a lone write for its window, so that others can join it', async () => {
    const id = await insert();
    const { writes, counter } = writesCounting({ windowMs: 300 });
    const started = Date.now();
    const lone = writes.write(id, 7, 'me', columns('lone'), t0 + 10);
    await new Promise((r) => setTimeout(r, 100));
    expect(counter.count).toBe(0);
    const late = writes.write(await insert(), 7, 'me', columns('late'), t0 + 10);
    expect(await Promise.all([lone, late])).toEqual([true, true]);
    expect(counter.count).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('never puts one row twice in a statement: the second write goes in the next, against the new version', async () => {
    const id = await insert();
    const { writes, counter } = writesCounting({ windowMs: 20 });
    const [first, second] = await Promise.all([
      writes.write(id, 7, 'me', columns('first'), t0 + 10),
      writes.write(id, 7, 'me', columns('second'), t0 + 11),
    ]);
    expect([first, second]).toEqual([true, false]);
    expect(counter.count).toBe(2);
    expect((await read(id))!.access_token_sealed).toBe('access-first');
  });

  it('writes the rows of a grouped statement that failed one by one, so each gets its own outcome', async () => {
    const ids = await Promise.all(Array.from({ length: 3 }, () => insert()));
    let statements = 0;
    // The grouped statement fails (as if the database refused one of its rows); the rows alone do not.
    const firstFails = store.db.withPlugin({
      transformQuery: (args: PluginTransformQueryArgs) => {
        if (++statements === 1) throw new Error('the grouped statement failed');
        return args.node;
      },
      transformResult: async (args: PluginTransformResultArgs) => args.result,
    }) as Kysely<Database>;
    const writes = new RefreshWrites(firstFails, store.kind, { windowMs: 20 });
    const written = await Promise.all(
      ids.map((id, i) => writes.write(id, 7, 'me', columns(String(i)), t0 + 10)),
    );
    expect(written).toEqual([true, true, true]);
    expect(statements).toBe(4);
    for (const [i, id] of ids.entries()) expect((await read(id))!.access_token_sealed).toBe(`access-${i}`);
  });

  // An expiry past bigint: PostgreSQL refuses the row (SQLite stores it as a real). The OAuth
  // client caps a provider's `expires_in` (test/oauth/token-lifetime.test.ts); this row stands
  // for any one row the database refuses.
  if (kind === 'postgres') {
    it("fails only the row the database refuses (an expiry past bigint), never its neighbours'", async () => {
      const [before, poisoned, after] = await Promise.all([insert(), insert(), insert()]);
      const { writes } = writesCounting({ windowMs: 20 });
      const outcomes = await Promise.allSettled([
        writes.write(before!, 7, 'me', columns('before'), t0 + 10),
        writes.write(poisoned!, 7, 'me', columns('poisoned', { access_token_expires_at: 1e20 }), t0 + 10),
        writes.write(after!, 7, 'me', columns('after'), t0 + 10),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((await read(before!))!.access_token_sealed).toBe('access-before');
      expect((await read(after!))!.access_token_sealed).toBe('access-after');
      expect((await read(poisoned!))!.access_token_sealed).toBe('access-old');
    });
  }

  it('fails every caller when the database fails them all, and the next statement still runs', async () => {
    const id = await insert();
    const broken = store.db.withPlugin({
      transformQuery: () => {
        throw new Error('database unavailable');
      },
      transformResult: async (args: PluginTransformResultArgs) => args.result,
    }) as Kysely<Database>;
    const failing = new RefreshWrites(broken, store.kind, { windowMs: 5 });
    const outcomes = await Promise.allSettled([
      failing.write(id, 7, 'me', columns('x'), t0 + 10),
      failing.write(await insert(), 7, 'me', columns('y'), t0 + 10),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect((await read(id))!.access_token_sealed).toBe('access-old');
    const { writes } = writesCounting();
    expect(await writes.write(id, 7, 'me', columns('z'), t0 + 10)).toBe(true);
  });
});
