import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle, waitUntil } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

/**
 * The fences that keep concurrent writers from undoing each other, each driven into the race it
 * exists for, so that breaking it fails here:
 * - the version fence on the refresh write (`RefreshWrites.write`): a Reconnect lands between a
 *   refresh's read and its write; the refresh's tokens must be discarded, not written over it;
 * - the once-per-incident fence on `needs_reauth` (`markNeedsReauth`): two instances hear
 *   `invalid_grant` for the same row version at once; one transition, one audit entry, one event,
 *   one webhook. Single flight and the lease hide this on one instance, so two instances take part,
 *   the second with its clock ahead (it sees the first one's lease as run out: clock skew between
 *   hosts is how two holders happen in production).
 */
describe.each(databaseKinds)('write fences under real races, on %s', (kind) => {
  let lc: Lifecycle;
  let a: TestService;
  let b: TestService;
  const skewMs = 10_000;

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    // `a` delivers webhooks (its scheduler is slowed down so that only the calls below refresh).
    a = await lc.startService({ schedulerIntervalMs: 600_000, leaseMs: 2_000 });
    b = await lc.startService({
      background: false,
      leaseMs: 2_000,
      clock: { now: () => Date.now() + skewMs },
    });
  });

  afterAll(async () => {
    lc.faults.clear();
    await lc?.close();
  });

  /** The access token stored for the connection now, opened. */
  async function storedAccessToken(id: string): Promise<string> {
    const { store, sealer } = a.service.ctx;
    const row = await store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return sealer.open(row.access_token_sealed!, {
      table: 'connections',
      rowId: id,
      field: 'access_token_sealed',
    });
  }

  it('a Reconnect between a refresh’s read and its write: the refresh’s tokens are discarded', async () => {
    const id = await lc.connect(a, 'u-fence');
    await lc.waitForExpiry(a, 'u-fence', id);
    // The provider handles the refresh at once (rotating) and answers 3 s later.
    lc.faults.set({ kind: 'slowAnswer', ms: 3_000 });
    const arrived = lc.faults.nextRequest();
    const refreshing = a.service.ctx.tokens.getAccessToken(id);
    const request = await arrived;
    lc.faults.clear();
    const { outcome } = await lc.reconnect(a, 'u-fence', id);
    expect(outcome).toBe('reconnected');
    expect(Date.now() - request.at, 'the Reconnect finished before the refresh answer').toBeLessThan(3_000);
    const reconnected = lc.tokenCalls.filter((c) => c.grantType === 'authorization_code').at(-1)!;

    const token = await refreshing;
    const refresh = lc.tokenCalls.filter((c) => c.grantType === 'refresh_token').at(-1)!;
    expect(refresh.status).toBe(200);
    expect(refresh.accessToken).toBeTruthy();
    // The Reconnect's tokens stay; the refresh's answer (older grant, older read) was not written.
    // (Compared as booleans: a failure message must not print a token, even a test one.)
    const stored = await storedAccessToken(id);
    expect(stored === reconnected.accessToken, 'the stored token is the Reconnect’s').toBe(true);
    expect(stored === refresh.accessToken, 'the stored token is the discarded refresh’s').toBe(false);
    expect(token.value === reconnected.accessToken, 'the caller got the Reconnect’s token').toBe(true);
    expect(a.logs.some((l) => l.includes('refreshed tokens discarded'))).toBe(true);
    expect((await lc.connection(a, 'u-fence', id)).status).toBe('active');
  }, 30_000);

  it('two instances hear invalid_grant for the same row: one transition, one audit entry, one event, one webhook', async () => {
    const id = await lc.connect(a, 'u-twice');
    await lc.receiver.waitFor((got) =>
      got.some((r) => r.body.includes('connection.created') && r.body.includes(id)),
    );
    expect(await lc.oidc.revokeGrants()).toBeGreaterThanOrEqual(1);
    await lc.waitForExpiry(a, 'u-twice', id);
    const refreshesBefore = lc.refreshCount();
    // Both token requests are at the provider at the same time (it waits before handling each).
    lc.faults.set({ kind: 'slow', ms: 1_500 });
    const first = lc.faults.nextRequest();
    const viaA = a.service.ctx.tokens.getAccessToken(id).catch((e: unknown) => e);
    await first;
    const second = lc.faults.nextRequest();
    const viaB = b.service.ctx.tokens.getAccessToken(id).catch((e: unknown) => e);
    await second;
    lc.faults.clear();
    const outcomes = await Promise.all([viaA, viaB]);
    expect(lc.refreshCount() - refreshesBefore, 'both instances asked the provider').toBe(2);
    for (const o of outcomes) expect(o).toMatchObject({ code: 'connection_needs_reauth' });

    const { store } = a.service.ctx;
    const audits = await store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'connection.needs_reauth')
      .where('target_id', '=', id)
      .execute();
    expect(audits).toHaveLength(1);
    const events = await store.db.selectFrom('events').selectAll().where('user_id', '=', 'u-twice').execute();
    expect(
      events.filter((e) => e.type === 'connection.status' && e.data.includes('needs_reauth')),
    ).toHaveLength(1);
    const notifications = await store.db
      .selectFrom('notifications')
      .selectAll()
      .where('connection_id', '=', id)
      .where('type', '=', 'connection.needs_reauth')
      .execute();
    expect(notifications).toHaveLength(1);
    await waitUntil('the needs_reauth webhook', () =>
      lc.receiver.received.some((r) => r.body.includes('connection.needs_reauth') && r.body.includes(id)),
    );
    await new Promise((r) => setTimeout(r, 2_000)); // a second delivery would arrive by now
    expect(
      lc.receiver.received.filter((r) => r.body.includes('connection.needs_reauth') && r.body.includes(id)),
    ).toHaveLength(1);
    expect((await lc.connection(a, 'u-twice', id)).status).toBe('needs_reauth');
  }, 30_000);
});
