/**
 * Webhook retries against a real receiver on 127.0.0.1 that fails, with the outbox in a real
 * database and the clock driven by the test: each attempt comes at the documented backoff (10 s
 * doubling, capped at 1 h, ±20 % jitter) and not before, every attempt is signed validly, and after
 * `maxWebhookAttempts` the delivery is given up and recorded as failed.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { maxWebhookAttempts, Webhooks } from '../../src/notify/webhooks.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Store } from '../../src/store/database.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';
import {
  type RecordingServer,
  startRecordingServer,
  verifyWebhookSignature,
  webhookEvents,
} from '../support/webhook-receiver.js';

const secret = 'webhook-retry-test-secret-0123456789';
const start = Date.parse('2026-03-01T12:00:00Z');

/** The documented delay before the attempt after failed attempt `n`, without jitter. */
const baseDelayMs = (n: number) => Math.min(3_600_000, 10_000 * 2 ** (n - 1));

describe.each(databaseKinds)('webhook retry schedule and give-up on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  let receiver: RecordingServer;
  /** How many requests the receiver refuses (500) before it accepts. */
  let failFirst = 0;
  let now = start;
  const logs: string[] = [];
  let webhooks: Webhooks;

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    receiver = await startRecordingServer({
      answer: () => (receiver.received.length <= failFirst ? { status: 500, body: 'nope' } : undefined),
    });
    webhooks = new Webhooks({
      db: store.db,
      sealer: new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: generateKey() }] })),
      fetch: createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 5_000 }),
      clock: { now: () => now },
      logger: createLogger({
        level: 'warn',
        destination: new Writable({
          write(chunk, _e, cb) {
            logs.push(String(chunk));
            cb();
          },
        }),
      }),
    });
    await webhooks.syncFromConfig([{ url: `${receiver.url}/hooks`, secret }]);
  });
  afterAll(async () => {
    await receiver?.close();
    await store?.close();
    await database?.drop();
  });

  async function delivery() {
    return store.db.selectFrom('webhook_deliveries').selectAll().executeTakeFirstOrThrow();
  }

  /** Enqueues one event as the service does (inside a transaction). */
  async function enqueue(connectionId: string) {
    await store.db.transaction().execute((trx) =>
      webhooks.enqueue(trx, 'connection.needs_reauth', {
        connectionId,
        userId: 'alice',
        integration: 'items',
        reason: 'invalid_grant',
      }),
    );
  }

  /**
   * Runs attempts until the delivery is no longer pending or `maxTries` were made: checks that
   * nothing is sent a millisecond before it is due, that it is sent when due, and the backoff.
   */
  async function driveAttempts(maxTries: number): Promise<number[]> {
    const delays: number[] = [];
    for (let attempt = 1; attempt <= maxTries; attempt++) {
      const before = await delivery();
      if (before.status !== 'pending') break;
      const due = before.next_attempt_at!;
      now = due - 1;
      expect(await webhooks.deliverDue(), `attempt ${attempt} is not sent before it is due`).toBe(0);
      now = due;
      const sentBefore = receiver.received.length;
      expect(await webhooks.deliverDue()).toBe(1);
      expect(receiver.received.length).toBe(sentBefore + 1);
      const after = await delivery();
      expect(after.attempts).toBe(attempt);
      if (after.status === 'pending') delays.push(after.next_attempt_at! - now);
    }
    return delays;
  }

  it('retries a failing receiver at the backoff, signed each time, and delivers once it recovers', async () => {
    failFirst = 4;
    await enqueue('c-recovers');
    const delays = await driveAttempts(10);
    expect(delays).toHaveLength(4);
    delays.forEach((d, i) => {
      expect(d, `delay after failure ${i + 1}`).toBeGreaterThanOrEqual(0.8 * baseDelayMs(i + 1));
      expect(d, `delay after failure ${i + 1}`).toBeLessThanOrEqual(1.2 * baseDelayMs(i + 1));
    });
    const d = await delivery();
    expect(d).toMatchObject({ status: 'delivered', attempts: 5, last_status: 200, last_error: null });
    expect(d.delivered_at).toBe(now);
    // Every attempt carried the same event, signed with the endpoint's secret at its own time.
    const events = webhookEvents(receiver.received);
    expect(events).toHaveLength(5);
    expect(new Set(events.map((e) => e.event.id)).size).toBe(1);
    for (const { request } of events) {
      const verdict = verifyWebhookSignature(request, secret, { now: now / 1000, toleranceSeconds: 10_000 });
      expect(verdict).toMatchObject({ ok: true });
    }
    // Signed at the (driven) time of each attempt, not once at enqueue.
    const times = events.map(
      ({ request }) =>
        (verifyWebhookSignature(request, secret, { toleranceSeconds: 1e12 }) as { t: number }).t,
    );
    expect(new Set(times).size).toBe(5);
    await store.db.deleteFrom('webhook_deliveries').execute();
    receiver.received.length = 0;
  });

  it(`gives up after ${maxWebhookAttempts} attempts and records the failure`, async () => {
    expect(maxWebhookAttempts).toBe(12);
    failFirst = Number.POSITIVE_INFINITY;
    logs.length = 0;
    await enqueue('c-gives-up');
    const delays = await driveAttempts(maxWebhookAttempts + 3);
    expect(receiver.received).toHaveLength(maxWebhookAttempts);
    expect(delays).toHaveLength(maxWebhookAttempts - 1);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0.8 * baseDelayMs(i + 1));
      expect(d).toBeLessThanOrEqual(1.2 * baseDelayMs(i + 1));
    });
    // The cap: after the tenth and eleventh failures, about an hour (not 85 and 171 minutes).
    for (const d of delays.slice(9)) expect(d).toBeLessThanOrEqual(1.2 * 3_600_000);
    const d = await delivery();
    expect(d).toMatchObject({
      status: 'failed',
      attempts: maxWebhookAttempts,
      last_status: 500,
      last_error: 'HTTP 500',
      next_attempt_at: null,
      lease_until: null,
      delivered_at: null,
    });
    // Nothing more is sent, however long we wait.
    now += 30 * 24 * 3_600_000;
    expect(await webhooks.deliverDue()).toBe(0);
    expect(receiver.received).toHaveLength(maxWebhookAttempts);
    // Each failure was logged as a warning, without the secret or the receiver's body.
    const warned = logs.filter((l) => l.includes('webhook delivery failed'));
    expect(warned).toHaveLength(maxWebhookAttempts);
    expect(logs.join('')).not.toContain(secret);
  });
});
