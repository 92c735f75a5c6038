import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { webhookEvents } from '../support/webhook-receiver.js';

/** The outage the issue names: the provider answers 503 to every token request for 20 s. */
const outageMs = 20_000;
/**
 * How long after the provider is back the first call may take to succeed: the breaker lets one
 * probe per provider through each second (it used to stay open 5 s doubling to 30 s).
 */
const recoveryBoundMs = 2_000;
/** Consecutive failures before the breaker opens (circuit-breaker.ts default). */
const breakerThreshold = 5;
const users = ['u-ann', 'u-ben', 'u-cat'];

/**
 * A 20-second provider outage on the service as deployed: background scheduler on, the default
 * per-provider circuit breaker, three users calling the proxy all along. Nothing the users own may
 * change: no status other than active, no notification, no needs-reauth webhook; calls answer 200
 * while tokens last and 503 `provider_unavailable` after, never 409; afterwards the service is
 * back by itself, with no one reconnecting.
 */
describe.each(databaseKinds)('a 20 s provider outage, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  const ids = new Map<string, string>();
  const statusesSeen = new Set<string>();
  let polling = true;
  let poller: Promise<void>;

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    svc = await lc.startService({ schedulerIntervalMs: 500 });
    for (const user of users) ids.set(user, await lc.connect(svc, user));
    // The connects' own webhooks arrive first, so that the outage's (there must be none) stand apart.
    await lc.receiver.waitFor((got) => webhookEvents(got).length >= users.length, 10_000);
    poller = (async () => {
      while (polling) {
        for (const [user, id] of ids) {
          const r = await svc.api(user, `/api/v1/connections/${id}`);
          statusesSeen.add(
            r.status === 200 ? ((await r.json()) as { status: string }).status : `HTTP ${r.status}`,
          );
        }
        await sleep(250);
      }
    })();
  }, 60_000);

  afterAll(async () => {
    polling = false;
    await poller;
    await lc?.close();
  });

  const call = async (user: string) => {
    const r = await svc.api(user, proxyPath(ids.get(user)!));
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };

  it('changes no connection, tells no user, answers 503 (never 409) and recovers by itself', async () => {
    const webhooksBefore = lc.receiver.received.length;
    const refreshesBefore = lc.refreshCount();
    lc.faults.set({ kind: 'status', status: 503 });
    const outageEnds = Date.now() + outageMs;
    const during: Array<{ status: number; type: string | null; body: string }> = [];
    while (Date.now() < outageEnds) {
      for (const user of users) during.push(await call(user));
      await sleep(1_000);
    }
    lc.faults.clear();
    const faulted = lc.faults.count('status');

    // 3-second tokens: the outage outlived them all, so both answers were seen, and nothing else.
    const statuses = new Set(during.map((r) => r.status));
    expect([...statuses].sort()).toEqual([200, 503]);
    for (const r of during.filter((x) => x.status === 503)) {
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'provider_unavailable' });
    }
    // The provider was tried, but the breaker kept it from being called on every request: about
    // one probe a second once open; every other caller got 503 without a token request of its own.
    expect(faulted).toBeGreaterThan(0);
    expect(faulted).toBeLessThan(during.filter((r) => r.status === 503).length);
    expect(faulted, 'token requests during the outage').toBeLessThanOrEqual(
      breakerThreshold + outageMs / 1000 + 2,
    );
    expect(lc.refreshCount()).toBe(refreshesBefore);

    // Back by itself: no one reconnects; the first call succeeds within the bound, then all do.
    const backAt = Date.now();
    let firstOkAt: number | undefined;
    const recovered = new Set<string>();
    while (recovered.size < users.length && Date.now() < backAt + 10_000) {
      for (const user of users) {
        if (recovered.has(user) || (await call(user)).status !== 200) continue;
        recovered.add(user);
        firstOkAt ??= Date.now();
      }
      await sleep(100);
    }
    expect([...recovered].sort()).toEqual([...users].sort());
    expect(firstOkAt! - backAt, 'first success after the provider is back (ms)').toBeLessThanOrEqual(
      recoveryBoundMs,
    );
    const after = await call(users[0]!);
    expect(after.status, after.body).toBe(200);
    expect(JSON.parse(after.body).items).toHaveLength(3);

    expect([...statusesSeen]).toEqual(['active']);
    for (const [user, id] of ids) {
      expect((await lc.connection(svc, user, id)).status).toBe('active');
      const notes = (await (await svc.api(user, '/api/v1/notifications')).json()) as unknown[];
      expect(notes, `notifications of ${user}`).toEqual([]);
    }
    // Webhooks go out asynchronously: give a needs-reauth one the time to arrive if there were one.
    await sleep(1_500);
    const events = webhookEvents(lc.receiver.received.slice(webhooksBefore)).map((e) => e.event.type);
    expect(events).toEqual([]);
  }, 120_000);
});
