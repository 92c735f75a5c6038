import { describe, expect, it } from 'vitest';
import { ConnectionCache } from '../../src/connections/connection-cache.js';
import type { ConnectionRow } from '../../src/store/types.js';

const row = (over: Partial<ConnectionRow> = {}): ConnectionRow => ({
  id: 'c1',
  user_id: 'alice',
  integration_id: 'items',
  status: 'active',
  status_reason: null,
  account_id: null,
  account_name: null,
  account_email: null,
  scopes: '[]',
  access_token_sealed: 'v1.k1.sealed',
  refresh_token_sealed: null,
  id_token_sealed: null,
  token_type: 'Bearer',
  access_token_expires_at: null,
  last_refreshed_at: null,
  next_refresh_at: null,
  refresh_failures: 0,
  lease_owner: null,
  lease_until: null,
  lease_taken_from: null,
  refresh_not_before: null,
  issuer: null,
  api_base_url: null,
  version: 0,
  created_at: 0,
  updated_at: 0,
  ...over,
});

/** A cache over an in-memory table whose reads are counted, with a hand-driven clock. */
function setup(options: { ttlMs?: number; maxEntries?: number } = {}) {
  const table = new Map<string, ConnectionRow>([['c1', row()]]);
  const reads: string[] = [];
  let now = 1_000;
  let gate: Promise<void> | undefined;
  const cache = new ConnectionCache({
    load: async (id) => {
      reads.push(id);
      const found = table.get(id); // read now, answered when the gate opens
      await gate;
      return found;
    },
    now: () => now,
    ...options,
  });
  return {
    cache,
    table,
    reads,
    advance: (ms: number) => {
      now += ms;
    },
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => {
        open = r;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('ConnectionCache', () => {
  it('reads a busy connection once per ttl, and concurrent misses share one read', async () => {
    const t = setup({ ttlMs: 1_000 });
    const rows = await Promise.all(Array.from({ length: 50 }, () => t.cache.findForUser('alice', 'c1')));
    expect(new Set(rows).size).toBe(1);
    expect(t.reads).toEqual(['c1']);
    t.advance(999);
    await t.cache.findForUser('alice', 'c1');
    expect(t.reads).toHaveLength(1);
    t.advance(1);
    await t.cache.findForUser('alice', 'c1');
    expect(t.reads).toHaveLength(2);
  });

  it("answers another user's connection as missing, without a read of its own", async () => {
    const t = setup();
    await t.cache.findForUser('alice', 'c1');
    expect(await t.cache.findForUser('mallory', 'c1')).toBeUndefined();
    expect(await t.cache.findForUser('alice', 'c1')).toBeDefined();
    expect(t.reads).toHaveLength(1);
  });

  it('sees a change at once after invalidate (this instance wrote it)', async () => {
    const t = setup();
    await t.cache.findForUser('alice', 'c1');
    t.table.delete('c1');
    expect(await t.cache.findForUser('alice', 'c1')).toBeDefined(); // another instance's delete: not yet
    t.cache.invalidate('c1');
    expect(await t.cache.findForUser('alice', 'c1')).toBeUndefined();
  });

  it('never remembers a miss, nor a row the hot path cannot use as it is', async () => {
    const t = setup();
    expect(await t.cache.findForUser('alice', 'nope')).toBeUndefined();
    await t.cache.findForUser('alice', 'nope');
    expect(t.reads.filter((id) => id === 'nope')).toHaveLength(2);
    t.table.set('c2', row({ id: 'c2', status: 'needs_reauth' }));
    t.table.set('c3', row({ id: 'c3', access_token_sealed: null }));
    for (const id of ['c2', 'c3']) {
      await t.cache.findForUser('alice', id);
      await t.cache.findForUser('alice', id);
      expect(t.reads.filter((r) => r === id)).toHaveLength(2);
    }
    expect(t.cache.size).toBe(0);
  });

  it('does not keep what a read in flight returns once the row was invalidated meanwhile', async () => {
    const t = setup();
    const release = t.hold();
    const stale = t.cache.findForUser('alice', 'c1');
    t.table.set('c1', row({ version: 1 }));
    t.cache.invalidate('c1');
    release();
    expect((await stale)?.version).toBe(0);
    expect((await t.cache.findForUser('alice', 'c1'))?.version).toBe(1);
    expect(t.reads).toHaveLength(2);
  });

  it('forgets a failed read, and reads again next time', async () => {
    let fail = true;
    const cache = new ConnectionCache({
      load: async () => {
        if (fail) throw new Error('database down');
        return row();
      },
    });
    await expect(cache.findForUser('alice', 'c1')).rejects.toThrow('database down');
    fail = false;
    expect(await cache.findForUser('alice', 'c1')).toBeDefined();
  });

  it('holds at most maxEntries rows, dropping the oldest', async () => {
    const t = setup({ maxEntries: 3 });
    for (const id of ['a', 'b', 'c', 'd']) {
      t.table.set(id, row({ id }));
      await t.cache.findForUser('alice', id);
    }
    expect(t.cache.size).toBe(3);
    await t.cache.findForUser('alice', 'a');
    expect(t.reads.filter((id) => id === 'a')).toHaveLength(2);
  });

  it('with ttl 0 reads the database every time', async () => {
    const t = setup({ ttlMs: 0 });
    await t.cache.findForUser('alice', 'c1');
    await t.cache.findForUser('alice', 'c1');
    expect(t.reads).toHaveLength(2);
    expect(t.cache.size).toBe(0);
  });
});
