import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import type { TokenFault } from '../support/fault.js';
import { accessTokenTtlSeconds, type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

/** The outage: long enough for several refresh attempts of a 3 s token, short enough for CI. */
const outageMs = 6_000;

describe.each(databaseKinds)('token endpoint faults are transient, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let id: string;
  /** Every status the connection was seen in while polling. */
  const statusesSeen = new Set<string>();
  let polling = true;
  let poller: Promise<void>;

  const call = async () => {
    const r = await svc.api('u-alice', proxyPath(id));
    return { at: Date.now(), status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };
  const expiresAt = async () => Date.parse((await lc.connection(svc, 'u-alice', id)).accessTokenExpiresAt!);
  /** Sleeps until the stored token's refresh is due (a quarter of its lifetime before expiry). */
  const waitUntilDue = async () => {
    const due = (await expiresAt()) - (accessTokenTtlSeconds * 1000) / 4;
    await sleep(Math.max(0, due + 100 - Date.now()));
  };
  const expectUnavailable = (r: { status: number; type: string | null; body: string }) => {
    expect(r.status, r.body).toBe(503);
    expect(r.type).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(r.body)).toMatchObject({ status: 503, code: 'provider_unavailable' });
  };

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false });
    // No scheduler: every refresh attempt below is one a proxied call made.
    // The breaker would (rightly) stop calling a failing provider; these tests want every call to reach it.
    svc = await lc.startService({ background: false, circuitBreaker: { threshold: 1000 } });
    id = await lc.connect(svc, 'u-alice');
    poller = (async () => {
      while (polling) {
        const r = await svc.api('u-alice', `/api/v1/connections/${id}`);
        statusesSeen.add(
          r.status === 200 ? ((await r.json()) as { status: string }).status : `HTTP ${r.status}`,
        );
        await sleep(200);
      }
    })();
  });

  afterAll(async () => {
    polling = false;
    await poller;
    await lc?.close();
  });

  it('503 for 6 s: stays active, 503 provider_unavailable once expired (never 409), recovers by itself', async () => {
    // Start from a token just refreshed, then the provider goes down.
    await lc.waitForExpiry(svc, 'u-alice', id);
    expect((await call()).status).toBe(200);
    const tokenExpiresAt = await expiresAt();
    lc.faults.set({ kind: 'status', status: 503 });
    const outageEnds = Date.now() + outageMs;
    const faultedBefore = lc.faults.count('status');

    // While the token is valid the outage is invisible: no refresh is tried.
    const early = [await call()];
    await sleep(800);
    early.push(await call());
    expect(early.map((r) => r.status)).toEqual([200, 200]);
    expect(lc.faults.count('status')).toBe(faultedBefore);

    // Once it has expired, each call tries the provider and answers 503, never 409.
    await sleep(Math.max(0, tokenExpiresAt + 100 - Date.now()));
    const during: Awaited<ReturnType<typeof call>>[] = [];
    // Four attempts at most: a fifth consecutive failure would open the per-provider circuit
    // breaker (circuit-breaker.ts), which then, by design, holds calls back for a few seconds more.
    while (Date.now() < outageEnds - 300 && during.length < 4) {
      during.push(await call());
      await sleep(700);
    }
    expect(during.length).toBeGreaterThanOrEqual(3);
    for (const r of during) expectUnavailable(r);
    expect(lc.faults.count('status') - faultedBefore, 'refresh attempts during the outage').toBe(
      during.length,
    );

    await sleep(Math.max(0, outageEnds - Date.now()));
    lc.faults.clear();
    const after = await call();
    expect(after.status, after.body).toBe(200);
    expect(JSON.parse(after.body).items).toHaveLength(3);
    expect((await lc.connection(svc, 'u-alice', id)).status).toBe('active');
    expect([...statusesSeen]).toEqual(['active']);
  });

  const transient: Array<[string, TokenFault, number | undefined]> = [
    ['429 with Retry-After (plain-text body)', { kind: 'status', status: 429, retryAfterSeconds: 2 }, 2],
    [
      '429 with Retry-After (JSON error body)',
      { kind: 'status', status: 429, retryAfterSeconds: 3, body: { error: 'rate_limited' } },
      3,
    ],
    ['503 with Retry-After (plain-text body)', { kind: 'status', status: 503, retryAfterSeconds: 2 }, 2],
    ['HTML garbage with 200', { kind: 'html' }, undefined],
    [
      'a JSON 200 without access_token',
      { kind: 'json', body: { token_type: 'Bearer', expires_in: 3 } },
      undefined,
    ],
  ];

  it.each(transient)(
    '%s is transient: 503 provider_unavailable, status stays active, Retry-After honoured by every call',
    async (_, fault, retry) => {
      await waitUntilDue();
      lc.faults.set(fault);
      const before = lc.faults.count(fault.kind as Exclude<TokenFault['kind'], 'none'>);
      const failedAt = Date.now();
      const r = await call();
      lc.faults.clear();
      // The provider really was asked, and answered badly.
      expect(lc.faults.count(fault.kind as Exclude<TokenFault['kind'], 'none'>)).toBe(before + 1);
      expectUnavailable(r);
      if (retry !== undefined) {
        expect(JSON.parse(r.body).retryAfterSeconds).toBe(retry);
        // Within the window the provider said to keep away, on-demand calls answer 503 with the
        // time left and send no token request at all (they used to retry within milliseconds).
        const requestsBefore = lc.faults.seen.length;
        const within: Awaited<ReturnType<typeof call>>[] = [];
        while (within.length < 10 && Date.now() < failedAt + retry * 1000 - 300) within.push(await call());
        expect(within.length).toBeGreaterThanOrEqual(5);
        for (const w of within) {
          expectUnavailable(w);
          expect(JSON.parse(w.body).retryAfterSeconds).toBeLessThanOrEqual(retry);
        }
        expect(lc.faults.seen.length, 'token requests within the Retry-After window').toBe(requestsBefore);
        await sleep(Math.max(0, failedAt + retry * 1000 + 100 - Date.now()));
      }
      const c = await lc.connection(svc, 'u-alice', id);
      expect(c.status).toBe('active');
      expect(c.statusReason).toBeNull();

      const next = await call();
      expect(next.status, next.body).toBe(200);
      expect([...statusesSeen]).toEqual(['active']);
    },
  );

  it('Entra throttling (AADSTS50196 as invalid_grant, no Retry-After): a pause every instance honours, never needs_reauth', async () => {
    const other = await lc.startService({ background: false });
    await waitUntilDue();
    lc.faults.set({
      kind: 'status',
      status: 400,
      body: {
        error: 'invalid_grant',
        error_description:
          'AADSTS50196: The server terminated an operation because it encountered a client request loop.',
        error_codes: [50196],
      },
    });
    const before = lc.faults.seen.length;
    const r = await call();
    expectUnavailable(r);
    expect(lc.faults.seen.length).toBe(before + 1);
    // The fault stays on: any further token request would show in `seen`.
    const others: Array<{ status: number; body: string }> = [];
    for (let i = 0; i < 10; i++) {
      others.push(await call());
      const o = await other.api('u-alice', proxyPath(id));
      others.push({ status: o.status, body: await o.text() });
    }
    lc.faults.clear();
    for (const o of others) {
      expect(o.status, o.body).toBe(503);
      const problem = JSON.parse(o.body);
      expect(problem.code).toBe('provider_unavailable');
      expect(problem.retryAfterSeconds).toBeGreaterThan(20);
    }
    expect(lc.faults.seen.length, 'token requests during the throttling pause').toBe(before + 1);
    const c = await lc.connection(svc, 'u-alice', id);
    expect(c.status).toBe('active');
    expect(c.statusReason).toBeNull();
  });

  it('told nobody to reconnect', async () => {
    const notifications = (await (await svc.api('u-alice', '/api/v1/notifications')).json()) as unknown[];
    expect(notifications).toEqual([]);
    expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
  });
});
