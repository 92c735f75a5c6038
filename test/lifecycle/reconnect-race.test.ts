/**
 * Regression (issue 8, reliability 3b): Reconnect wrote `version = old + 1` without checking the
 * old version. On PostgreSQL (read committed) a refresh that commits between the Reconnect's read
 * and its write was overwritten with the SAME version number the refresh had just written, so a
 * writer fenced on that version (the next refresh, a needs_reauth transition) would then clobber
 * the Reconnect's new tokens. The interleaving is forced with a row lock: the test holds the row,
 * lets the Reconnect read it and block on its write, commits a refresh-like write, then lets go.
 *
 * PostgreSQL only: on SQLite the service's one connection runs each transaction alone, so nothing
 * can commit between the Reconnect's read and its write.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lifecycle, startLifecycle, waitUntil } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

describe('Reconnect while a refresh commits, on postgres', () => {
  let lc: Lifecycle;
  let svc: TestService;

  beforeAll(async () => {
    lc = await startLifecycle({ kind: 'postgres' });
    svc = await lc.startService({ schedulerIntervalMs: 600_000 });
  });

  afterAll(async () => {
    await lc?.close();
  });

  it('keeps the new tokens and moves the version past the refresh, so no stale writer can clobber them', async () => {
    const userId = 'u-reconnect-race';
    const id = await lc.connect(svc, userId, 'alice');
    const db = svc.service.ctx.store.db;

    // The user reconnects; the provider redirects back, but the callback is not yet delivered.
    const ua = await signedInAgent(svc, userId);
    const authorizationUrl = await ua.startReconnect(svc.url, id);
    const callback = await ua.signInAtOidcProvider(authorizationUrl, 'alice');

    const other = new pg.Client({ connectionString: lc.database.url });
    await other.connect();
    try {
      await other.query('begin');
      const before = await other.query<{ version: number }>(
        'select version from connections where id = $1 for update',
        [id],
      );
      const oldVersion = Number(before.rows[0]!.version);
      // The callback: the Reconnect reads the row, then waits on our lock to write it.
      const finishing = ua.get(callback.href);
      await waitUntil('the Reconnect to wait for the row lock', async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
        return rows[0]!.n > 0;
      });
      // A refresh commits meanwhile (its fenced write: version old → old + 1).
      const refreshVersion = oldVersion + 1;
      await other.query(
        'update connections set version = $2, last_refreshed_at = 1 where id = $1 and version = $3',
        [id, refreshVersion, oldVersion],
      );
      await other.query('commit');

      const done = await finishing;
      const back = new URL(done.headers.get('location')!, svc.url);
      expect(back.searchParams.get('outcome')).toBe('reconnected');

      const row = await db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      // The Reconnect's write landed after the refresh's, with a version of its own.
      expect(Number(row.version)).toBeGreaterThan(refreshVersion);
      expect(Number(row.last_refreshed_at)).not.toBe(1);
      // Its tokens are the ones the provider issued for this Reconnect.
      const issued = lc.tokenCalls.filter((c) => c.grantType === 'authorization_code').at(-1)!;
      expect((await svc.service.ctx.tokens.getAccessToken(id)).value).toBe(issued.accessToken);
      // A writer that read the row as the refresh left it cannot overwrite the Reconnect.
      const stale = await other.query(
        "update connections set status = 'needs_reauth' where id = $1 and version = $2",
        [id, refreshVersion],
      );
      expect(stale.rowCount).toBe(0);
      expect((await lc.connection(svc, userId, id)).status).toBe('active');
    } finally {
      await other.query('rollback').catch(() => {});
      await other.end();
    }
  });
});
