/**
 * The refresh scheduler (connections/refresh-scheduler.ts) against the real provider and both
 * databases: a storm larger than one batch is claimed batch after batch within one run, the next
 * batch claimed while the current one is still being refreshed, and a run stops claiming at
 * `maxRows`, at its budget, when the service stops, or when a later claim fails, always finishing
 * what it claimed. Every refresh presents its own connection's refresh token once.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDueRefreshes } from '../../src/connections/refresh-scheduler.js';
import type { ClaimedRow } from '../../src/connections/token-service.js';
import { ConnectionRepository } from '../../src/store/repos/connections.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

const connections = 24;

describe.each(databaseKinds)('the refresh scheduler on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  const ids: string[] = [];

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false, accessTokenTtlSeconds: 3600 });
    svc = await lc.startService({ background: false });
    for (let i = 0; i < connections; i++) ids.push(await lc.connect(svc, `u-storm-${i}`));
  });

  afterAll(async () => {
    await lc?.close();
  });

  const db = () => svc.service.ctx.store.db;

  /** Makes every connection due now; returns how many refresh calls the provider had seen. */
  async function allDue(): Promise<number> {
    await db()
      .updateTable('connections')
      .set({ next_refresh_at: Date.now() - 1 })
      .execute();
    return lc.refreshCount();
  }

  const dueLeft = async () =>
    Number(
      (
        await db()
          .selectFrom('connections')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('next_refresh_at', '<=', Date.now())
          .executeTakeFirstOrThrow()
      ).n,
    );

  /** The service's dependencies for a run, its claims recorded (and `claim` able to replace them). */
  function deps(claim?: (n: number, real: (n: number) => Promise<ClaimedRow[]>) => Promise<ClaimedRow[]>) {
    const { store, tokens, clock, logger } = svc.service.ctx;
    const claims: Array<{ asked: number; got: number; refreshesBefore: number }> = [];
    const real = (n: number) => tokens.claimDueRefreshes(n);
    const original = tokens.claimDueRefreshes.bind(tokens);
    const wrapped = Object.create(tokens) as typeof tokens;
    wrapped.claimDueRefreshes = async (n: number) => {
      const refreshesBefore = lc.refreshCount();
      const rows = await (claim === undefined ? original(n) : claim(n, real));
      claims.push({ asked: n, got: rows.length, refreshesBefore });
      return rows;
    };
    wrapped.refreshClaimed = tokens.refreshClaimed.bind(tokens);
    return { d: { store, tokens: wrapped, clock, logger }, claims };
  }

  /** Each connection's refresh token was presented at most once, and every refresh succeeded. */
  function expectNoReuse() {
    const refreshes = lc.tokenCalls.filter((c) => c.grantType === 'refresh_token');
    const presented = refreshes.map((c) => c.presentedRefreshToken);
    expect(new Set(presented).size).toBe(presented.length);
    expect(refreshes.every((c) => c.status === 200)).toBe(true);
  }

  it('claims batch after batch in one run, the next one before the current one is done', async () => {
    const before = await allDue();
    const { d, claims } = deps();
    const refreshed = await runDueRefreshes(d, { batchSize: 10 });
    expect(refreshed).toBe(connections);
    expect(lc.refreshCount() - before).toBe(connections);
    expect(claims.map((c) => c.got)).toEqual([10, 10, 4]);
    // The workers took the whole first batch at once: the second was claimed before any of its refreshes.
    expect(claims[1]!.refreshesBefore).toBe(before);
    expect(await dueLeft()).toBe(0);
    expectNoReuse();
  });

  it('claims the next batch when the one running gets low, not when it is done', async () => {
    const before = await allDue();
    const { d, claims } = deps();
    // One token request at a time, 8 refreshes running: 12 rows of the first batch wait, and the
    // next batch is claimed once 5 are left.
    const refreshed = await runDueRefreshes(d, {
      batchSize: 20,
      perProviderConcurrency: 1,
      refreshesPerSlot: 8,
    });
    expect(refreshed).toBe(connections);
    expect(claims.map((c) => c.got)).toEqual([20, 4]);
    expect(claims[1]!.refreshesBefore - before).toBeGreaterThan(0);
    expect(claims[1]!.refreshesBefore - before).toBeLessThan(20);
    expectNoReuse();
  });

  it('stops claiming at maxRows, and leaves the rest due for the next run', async () => {
    const before = await allDue();
    const { d, claims } = deps();
    expect(await runDueRefreshes(d, { batchSize: 5, maxRows: 7 })).toBe(7);
    expect(claims.map((c) => c.asked)).toEqual([5, 2]);
    expect(lc.refreshCount() - before).toBe(7);
    expect(await dueLeft()).toBe(connections - 7);
    // A bound the batches meet exactly: no further (empty) claim.
    const exact = deps();
    expect(await runDueRefreshes(exact.d, { batchSize: 5, maxRows: 10 })).toBe(10);
    expect(exact.claims.map((c) => c.asked)).toEqual([5, 5]);
    expect(await runDueRefreshes(deps().d, { batchSize: 5 })).toBe(connections - 17);
    expectNoReuse();
  });

  it('stops claiming once its budget is spent, and finishes what it claimed', async () => {
    await allDue();
    const { d, claims } = deps();
    let calls = 0;
    // The run's clock: its budget is spent right after the run starts.
    const clock = { now: () => Date.now() + (calls++ === 0 ? 0 : 60_000) };
    expect(await runDueRefreshes({ ...d, clock }, { batchSize: 5, budgetMs: 1_000 })).toBe(5);
    expect(claims).toHaveLength(1);
    expect(await dueLeft()).toBe(connections - 5);
    await runDueRefreshes(deps().d);
    expectNoReuse();
  });

  it('claims nothing more once the service is stopping, and nothing at all if it already was', async () => {
    await allDue();
    const stopping = new AbortController();
    const { d, claims } = deps(async (n, real) => {
      const rows = await real(n);
      stopping.abort();
      return rows;
    });
    expect(await runDueRefreshes(d, { batchSize: 5, signal: stopping.signal })).toBe(5);
    expect(claims).toHaveLength(1);
    const stopped = deps();
    expect(await runDueRefreshes(stopped.d, { signal: stopping.signal })).toBe(0);
    expect(stopped.claims).toHaveLength(0);
    expect(await dueLeft()).toBe(connections - 5);
    await runDueRefreshes(deps().d);
    expectNoReuse();
  });

  it('refreshes what it claimed when a later claim fails, and fails the run when the first does', async () => {
    await allDue();
    let n = 0;
    const { d } = deps(async (size, real) => {
      if (n++ === 1) throw new Error('database went away');
      return real(size);
    });
    expect(await runDueRefreshes(d, { batchSize: 5 })).toBe(5);
    const failing = deps(async () => {
      throw new Error('database went away');
    });
    await expect(runDueRefreshes(failing.d, { batchSize: 5 })).rejects.toThrow('database went away');
    // The rows the failed claim left are still due, and the next run takes them.
    expect(await runDueRefreshes(deps().d, { batchSize: 5 })).toBe(connections - 5);
    expectNoReuse();
  });

  if (kind === 'postgres') {
    it('reads the due index in order and stops at the limit, even with statistics that missed a storm', async () => {
      // 2,000 rows due at once, copied from a real one and never analyzed: the planner's
      // statistics still describe the table before them, as at the start of a storm.
      await sql`insert into connections (id, user_id, integration_id, status, status_reason, account_id, account_name, account_email, scopes, access_token_sealed, refresh_token_sealed, id_token_sealed, token_type, access_token_expires_at, last_refreshed_at, next_refresh_at, refresh_failures, lease_owner, lease_until, lease_taken_from, refresh_not_before, issuer, api_base_url, version, created_at, updated_at)
        select gen_random_uuid()::text, 'u-planned-' || n, integration_id, status, status_reason, account_id, account_name, account_email, scopes, access_token_sealed, refresh_token_sealed, id_token_sealed, token_type, access_token_expires_at, last_refreshed_at, ${Date.now() - 60_000}::bigint - n, refresh_failures, null, null, null, refresh_not_before, issuer, api_base_url, version, created_at, updated_at
        from connections, generate_series(1, 2000) as n where id = ${ids[0]!}`.execute(db());
      try {
        const read = await db()
          .transaction()
          .execute(async (trx) => {
            const claimed = await new ConnectionRepository(trx).claimDueRefreshes(
              'probe-p',
              Date.now(),
              60_000,
              10,
              true,
            );
            expect(claimed).toHaveLength(10);
            // This transaction's own counts: index entries read from the due index.
            const stats = await sql<{
              read: string;
            }>`select pg_stat_get_xact_tuples_returned('connections_due'::regclass) as read`.execute(trx);
            return Number(stats.rows[0]?.read ?? -1);
          });
        // A scan of every due row (the plan the statistics led to) reads all 2,000 entries.
        expect(read).toBeGreaterThanOrEqual(10);
        expect(read).toBeLessThan(1000);
      } finally {
        await db().deleteFrom('connections').where('user_id', 'like', 'u-planned-%').execute();
      }
    });

    it('lets two instances claim at the same moment: the second takes other rows, without waiting for the first', async () => {
      await allDue();
      const now = Date.now();
      try {
        await db()
          .transaction()
          .execute(async (trx) => {
            const first = await new ConnectionRepository(trx).claimDueRefreshes(
              'probe-a',
              now,
              60_000,
              10,
              true,
            );
            expect(first).toHaveLength(10);
            // The first claim's transaction is still open, its rows locked.
            const second = await Promise.race([
              new ConnectionRepository(db()).claimDueRefreshes('probe-b', now, 60_000, 10, true),
              new Promise<'blocked'>((resolve) => setTimeout(() => resolve('blocked'), 3_000)),
            ]);
            expect(second).not.toBe('blocked');
            const ids = new Set(first.map((r) => r.id));
            expect((second as ClaimedRow[]).filter((r) => ids.has(r.id))).toEqual([]);
            expect(second).toHaveLength(10);
          });
      } finally {
        await db()
          .updateTable('connections')
          .set({ lease_owner: null, lease_until: null, next_refresh_at: Date.now() + 3_600_000 })
          .where('lease_owner', 'in', ['probe-a', 'probe-b'])
          .execute();
      }
    });
  }
});
