/**
 * Regression (issue 8, reliability 3a): the webhook outbox computed every claim of a batch from
 * the batch's start time, so behind a slow receiver a later claim was born expired and another
 * instance sent the same delivery again. Two workers on one database, a receiver that takes
 * 25 s (of the shared test clock) per POST, and the second worker running while the first is
 * halfway through its batch: every event must arrive exactly once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { Webhooks } from '../../src/notify/webhooks.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { createLogger } from '../../src/observability/logger.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';
import { type RecordingServer, startRecordingServer, webhookEvents } from '../support/webhook-receiver.js';

const secret = 'webhook-claims-test-secret-0123456789';
const events = 6;

describe.each(databaseKinds)('webhook claims with two workers on %s', (kind) => {
  let database: TestDatabase;
  let storeA: Store;
  let storeB: Store;
  let receiver: RecordingServer;
  let t: number;
  let onPost: () => Promise<void>;

  beforeEach(async () => {
    ({ store: storeA, database } = await createTestStore(kind));
    storeB = openStore(database.url);
    t = Date.now();
    onPost = async () => {};
    receiver = await startRecordingServer({
      answerAsync: async () => {
        t += 25_000; // a slow receiver, in the workers' clock
        await onPost();
        return undefined;
      },
    });
  });

  afterEach(async () => {
    await receiver?.close();
    await storeA?.close();
    await storeB?.close();
    await database?.drop();
  });

  function worker(store: Store): Webhooks {
    const keyring = Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key }] });
    return new Webhooks({
      db: store.db,
      sealer: new Sealer(keyring),
      fetch: createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 }),
      clock: { now: () => t },
      logger: createLogger({ level: 'silent' }),
    });
  }
  const key = generateKey();

  it('a slow batch never lets a second instance send the same delivery', async () => {
    const a = worker(storeA);
    const b = worker(storeB);
    await a.syncFromConfig([{ url: `${receiver.url}/hooks`, secret }]);
    for (let i = 0; i < events; i++) {
      await a.enqueue(storeA.db, 'connection.created', {
        connectionId: `c${i}`,
        userId: 'u1',
        integration: 'items',
      });
    }
    // While A's third POST is in flight (75 s after A started its batch), B runs.
    let posts = 0;
    let bRan = 0;
    onPost = async () => {
      posts++;
      if (posts === 3) bRan = await b.deliverDue();
    };
    const aTried = await a.deliverDue();

    expect(bRan).toBeGreaterThan(0); // the second worker really took part
    const byEvent = new Map<string, number>();
    for (const { event } of webhookEvents(receiver.received)) {
      byEvent.set(event.id, (byEvent.get(event.id) ?? 0) + 1);
    }
    expect(byEvent.size).toBe(events);
    expect([...byEvent.values()]).toEqual(Array(events).fill(1));
    expect(aTried + bRan).toBe(events);
    const rows = await storeA.db.selectFrom('webhook_deliveries').select(['status', 'attempts']).execute();
    expect(rows).toEqual(Array(events).fill({ status: 'delivered', attempts: 1 }));
  });
});
