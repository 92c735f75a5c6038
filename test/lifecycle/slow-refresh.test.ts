import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

/**
 * A provider that answers a refresh with its headers at once and its body much later. oidc-provider
 * (rotation on, no reuse grace) has consumed the presented refresh token when it starts answering:
 * a second request with that token is reuse, which revokes the grant. The lease is short here, the
 * body delay several times it; the holder must keep its lease alive and wait the answer out, and
 * every other caller (another instance, or this one) must not present the token again.
 */
const leaseMs = 800;
const bodyDelayMs = 4_000;
/** Long enough that the slow answer's access token is still valid when it arrives. */
const ttlSeconds = 8;
/** Waits until the token's refresh is due and it has less than the 5 s of life a caller may still use. */
const untilDue = -(ttlSeconds * 1000) / 4 + 100;

interface Answer {
  at: number;
  instance: string;
  status: number;
  body: string;
}

describe.each(databaseKinds)('a refresh whose answer body takes 5× the lease, on %s', (kind) => {
  let lc: Lifecycle;
  let a: TestService;
  let b: TestService;

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false, accessTokenTtlSeconds: ttlSeconds });
    a = await lc.startService({ background: false, leaseMs });
    b = await lc.startService({ background: false, leaseMs });
  });

  afterAll(async () => {
    lc.faults.clear();
    await lc?.close();
  });

  const call = async (svc: TestService, name: string, user: string, id: string): Promise<Answer> => {
    const r = await svc.api(user, proxyPath(id));
    return { at: Date.now(), instance: name, status: r.status, body: await r.text() };
  };
  const refreshCalls = () => lc.tokenCalls.filter((c) => c.grantType === 'refresh_token');

  /**
   * With the token expired and the slow body switched on, `start` begins the refresh; then `callers`
   * keep calling until the slow answer has arrived. Checks what every caller may see (200, or 503
   * with Retry-After; never 409 or 500), that one refresh request was made, no reuse, and that the
   * connection is active and usable afterwards, through the next rotation too.
   */
  async function slowRefresh(
    user: string,
    start: (id: string) => Promise<unknown>,
    callers: Array<[string, TestService]>,
  ) {
    const id = await lc.connect(a, user);
    await lc.waitForExpiry(a, user, id, untilDue);
    const refreshesBefore = refreshCalls().length;
    const providerBefore = lc.refreshCount();
    lc.faults.set({ kind: 'slowBody', ms: bodyDelayMs });
    const arrived = lc.faults.nextRequest();
    const first = start(id).then(
      (v) => v,
      (error: unknown) => error,
    );
    const request = await arrived;
    lc.faults.clear();
    const answers: Answer[] = [];
    // Past the lease, while the first request's answer is still on its way.
    await sleep(leaseMs * 1.5);
    while (refreshCalls().length === refreshesBefore && Date.now() < request.at + bodyDelayMs * 3) {
      answers.push(...(await Promise.all(callers.map(([name, svc]) => call(svc, name, user, id)))));
      await sleep(200);
    }
    await first;
    const story = () =>
      `answers: ${JSON.stringify(answers.map((x) => `${x.instance} ${x.at - request.at}ms ${x.status} ${x.body.slice(0, 80)}`))}; reuse detected: ${lc.oidc.counters.refreshReuseDetected}; logs: ${lc.problemLogs().slice(-5).join('\n')}`;

    // Callers saw the lease renewed and waited (bounded), then 503 with Retry-After; nobody lost the connection.
    expect(answers.length, story()).toBeGreaterThan(0);
    for (const x of answers) {
      expect([200, 503], story()).toContain(x.status);
      if (x.status === 503) {
        const problem = JSON.parse(x.body);
        expect(problem.code).toBe('provider_unavailable');
        expect(problem.retryAfterSeconds).toBeGreaterThan(0);
      }
    }
    // One refresh request in all: nobody presented the refresh token a second time.
    const during = refreshCalls().slice(refreshesBefore);
    expect(
      during.map((c) => c.status),
      story(),
    ).toEqual([200]);
    expect(lc.refreshCount() - providerBefore, story()).toBe(1);
    expect(lc.oidc.counters.refreshReuseDetected, story()).toBe(0);
    expect(during[0]!.at - during[0]!.startedAt).toBeGreaterThanOrEqual(bodyDelayMs - 100);

    // Active and usable with the slow answer's tokens, on every instance, without another refresh.
    expect((await lc.connection(a, user, id)).status, story()).toBe('active');
    for (const svc of [a, b]) {
      const r = await svc.api(user, proxyPath(id));
      expect(r.status, story()).toBe(200);
      expect((await r.json()).items).toHaveLength(3);
    }
    expect(lc.refreshCount() - providerBefore).toBe(1);

    // The rotated refresh token from the slow answer was stored: the next refresh presents it.
    await lc.waitForExpiry(a, user, id, untilDue);
    const again = await call(b, 'b', user, id);
    expect(again.status, again.body).toBe(200);
    const next = refreshCalls().at(-1)!;
    expect(next.presentedRefreshToken).toBe(during[0]!.refreshToken);
    expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
    expect((await lc.connection(a, user, id)).status).toBe('active');
  }

  it('two instances: the holder renews its lease and waits; the other waits or answers 503, never refreshes', async () => {
    await slowRefresh('u-two', (id) => a.api('u-two', proxyPath(id)), [
      ['b', b],
      ['a', a],
    ]);
  }, 60_000);

  it('one instance: on-demand calls join the scheduled refresh in flight', async () => {
    await slowRefresh('u-scheduled', (id) => a.service.ctx.tokens.refreshScheduled(id), [['a', a]]);
  }, 60_000);

  it('one instance: on-demand calls join the forced refresh in flight', async () => {
    await slowRefresh('u-forced', (id) => a.service.ctx.tokens.getAccessToken(id, { force: true }), [
      ['a', a],
    ]);
  }, 60_000);
});
