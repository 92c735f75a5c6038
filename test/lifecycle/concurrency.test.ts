import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import {
  accessTokenTtlSeconds,
  burst,
  type Lifecycle,
  proxyPath,
  startLifecycle,
  type TokenCall,
} from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

const calls = 500;
/** A token is refreshed a quarter of its lifetime before expiry (refresh-policy.ts). */
const freshWindowMs = (accessTokenTtlSeconds * 1000 * 3) / 4;
/**
 * The shortest possible time between two refreshes that are each for their own expiry: the fresh
 * window, less the scheduler's jitter, less the rounding of `expires_in` to whole seconds (a JWT
 * can expire up to ~1 s before the service thinks, and the API's 401 then forces the refresh).
 * A duplicate refresh of one token happens within milliseconds of the first.
 */
const minGapMs = freshWindowMs - 750;

const refreshes = (calls: readonly TokenCall[]) => calls.filter((c) => c.grantType === 'refresh_token');

/** The refresh token the service holds now: the last one the provider issued to it. */
function currentRefreshToken(calls: readonly TokenCall[]): string | undefined {
  return calls.filter((c) => c.status === 200 && c.refreshToken !== undefined).at(-1)?.refreshToken;
}

/**
 * "Exactly one refresh per expiry" for the whole history: one rotation chain (each refresh presented
 * the refresh token the previous answer issued, none was presented twice) and every refresh started
 * only once the token issued by the previous one was due.
 */
function expectOneRefreshPerExpiry(calls: readonly TokenCall[]) {
  const issued = calls.filter((c) => c.grantType === 'authorization_code').at(-1)?.refreshToken;
  const chain = refreshes(calls);
  const presented = chain.map((c) => c.presentedRefreshToken);
  expect(new Set(presented).size, 'a refresh token was presented twice').toBe(presented.length);
  let expected = issued;
  let previousAt: number | undefined;
  for (const [i, r] of chain.entries()) {
    expect(r.status, `refresh ${i} status`).toBe(200);
    expect(r.presentedRefreshToken, `refresh ${i} presented another than the current refresh token`).toBe(
      expected,
    );
    if (previousAt !== undefined) {
      expect(r.startedAt - previousAt, `refresh ${i} came before its token was due`).toBeGreaterThan(
        minGapMs,
      );
    }
    expected = r.refreshToken;
    previousAt = r.at;
  }
}

describe.each(databaseKinds)('500 concurrent calls over three instances on %s', (kind) => {
  let lc: Lifecycle;
  let services: TestService[] = [];
  let id: string;

  beforeAll(async () => {
    // Bursts of 500 calls of one user, a round every few seconds: up to about 700 per instance in
    // the proxy's 10 s window, close to its default per-user limit (1,000), which is not under test here.
    lc = await startLifecycle({ kind, webhooks: false, rateLimits: { proxy: { perUser: 100_000 } } });
    for (let i = 0; i < 3; i++) services.push(await lc.startService({ background: false, leaseMs: 5_000 }));
    id = await lc.connect(services[0]!, 'u-alice');
  });

  afterAll(async () => {
    await lc?.close();
  });

  /** What the service holds before an expiry: its refresh token, and how many refreshes there were. */
  const snapshot = () => ({
    expiring: currentRefreshToken(lc.tokenCalls),
    countBefore: lc.refreshCount(),
    seenBefore: refreshes(lc.tokenCalls).length,
  });

  /**
   * Fires the burst; checks 500 × 200 and that exactly one refresh used the refresh token held at
   * `snap` (taken before anything could refresh this expiry).
   */
  async function burstOnExpiry(
    over: TestService[],
    round: string,
    { expiring, countBefore, seenBefore } = snapshot(),
    fireAt = Date.now(),
  ) {
    await sleep(Math.max(0, fireAt - Date.now()));
    const from = Date.now();
    const results = await burst(over, 'u-alice', proxyPath(id), calls);
    const took = Date.now() - from;
    await sleep(200); // a scheduled refresh that raced the burst reports its answer
    const failed = results.filter((r) => r.status !== 200);
    expect(
      failed.map((r) => `#${r.instance} ${r.status} ${r.body}`).slice(0, 5),
      `${round}: ${failed.length} calls failed; service logs:\n${lc.problemLogs().slice(0, 10).join('\n')}`,
    ).toEqual([]);
    expect(new Set(results.map((r) => r.instance)).size).toBe(over.length);
    expect(JSON.parse(results[0]!.body).items).toHaveLength(3);
    const during = refreshes(lc.tokenCalls).slice(seenBefore);
    expect(
      during.filter((r) => r.presentedRefreshToken === expiring),
      `${round}: refreshes of the expiring token (burst took ${took} ms)`,
    ).toHaveLength(1);
    // Every refresh the provider saw was one of ours (none hidden from the recorder).
    expect(lc.refreshCount() - countBefore).toBe(during.length);
    expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
    return { took, refreshes: during.length };
  }

  it('an expired token: exactly one refresh at the provider, no reuse, 500 × 200', async () => {
    await lc.waitForExpiry(services[0]!, 'u-alice', id);
    const { took, refreshes: n } = await burstOnExpiry(services, 'expired token');
    // The burst outlasting the new token's fresh window is the only way to a second (legitimate) refresh.
    if (took < freshWindowMs) expect(n).toBe(1);
    expectOneRefreshPerExpiry(lc.tokenCalls);
    expect((await lc.connection(services[1]!, 'u-alice', id)).status).toBe('active');
  });

  it('with the scheduler racing on all three: exactly one refresh per expiry, no reuse, all 200', async () => {
    // Let the token expire while nothing runs, so the scheduler is due the moment it starts.
    const { accessTokenExpiresAt } = await lc.connection(services[0]!, 'u-alice', id);
    await Promise.all(services.map((s) => s.close()));
    await sleep(Math.max(0, Date.parse(accessTokenExpiresAt!) + 200 - Date.now()));
    const beforeStart = snapshot();
    services = await Promise.all(
      [0, 1, 2].map(() => lc.startService({ background: true, schedulerIntervalMs: 100, leaseMs: 5_000 })),
    );
    // 1: the token expired while every instance was down; their schedulers start ticking now.
    await burstOnExpiry(services, 'round 1 (expired while down)', beforeStart);
    // 2…: a burst fired just as the next refresh falls due, the schedulers ticking every 100 ms.
    // (One more round on PostgreSQL, where its pool queues widen the races this looks for.)
    const lastRound = kind === 'postgres' ? 4 : 3;
    for (let round = 2; round <= lastRound; round++) {
      const c = await lc.connection(services[0]!, 'u-alice', id);
      const dueAt = Date.parse(c.accessTokenExpiresAt!) - (accessTokenTtlSeconds * 1000) / 4;
      // Before the scheduler may take it (its jitter is < 75 ms), then fire so that the calls
      // arrive as it falls due, while the schedulers pick it up.
      await sleep(Math.max(0, dueAt - 200 - Date.now()));
      await burstOnExpiry(services, `round ${round} (at due time)`, snapshot(), dueAt - 60);
    }
    expectOneRefreshPerExpiry(lc.tokenCalls);
    expect(lc.refreshCount()).toBe(refreshes(lc.tokenCalls).length);
    expect((await lc.connection(services[2]!, 'u-alice', id)).status).toBe('active');
  });
});
