/**
 * Regression (issue 8, reliability 3a): background revocations computed every claim of a batch
 * from the batch's start time, and claimed rows another instance had meanwhile finished (using
 * the batch's stale copy of the token), so one token was revoked twice. Two workers on one
 * database, a provider that takes 25 s (of the shared test clock) per revocation, and the second
 * worker running while the first is halfway through its batch: every token is sent once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RevocationQueue } from '../../src/connections/revocations.js';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import type { ProviderClients } from '../../src/oauth/registry.js';
import { createLogger } from '../../src/observability/logger.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const tokens = 6;

describe.each(databaseKinds)('revocation claims with two workers on %s', (kind) => {
  let database: TestDatabase;
  let storeA: Store;
  let storeB: Store;
  let t: number;
  const key = generateKey();

  beforeEach(async () => {
    ({ store: storeA, database } = await createTestStore(kind));
    storeB = openStore(database.url);
    t = Date.now();
  });

  afterEach(async () => {
    await storeA?.close();
    await storeB?.close();
    await database?.drop();
  });

  function worker(store: Store, revoke: (token: string) => Promise<void>): RevocationQueue {
    const keyring = Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key }] });
    // The provider is faked (a unit test may fake the network); the database is real.
    const client = {
      supportsRevocation: true,
      revoke: async (token: string) => {
        await revoke(token);
        return true;
      },
    };
    const clients = { forKey: async () => client } as unknown as ProviderClients;
    return new RevocationQueue({
      store,
      sealer: new Sealer(keyring),
      clients,
      clock: { now: () => t },
      logger: createLogger({ level: 'silent' }),
    });
  }

  it('a slow batch never lets a second instance revoke the same token again', async () => {
    const revoked: string[] = [];
    let bDone = 0;
    let bRun: Promise<number> | undefined;
    const b = worker(storeB, async (token) => {
      revoked.push(token);
      t += 25_000;
    });
    const a = worker(storeA, async (token) => {
      revoked.push(token);
      t += 25_000; // a slow provider, in the workers' clock
      // While A's third revocation is in flight (75 s after A started its batch), B runs.
      if (revoked.length === 3 && bRun === undefined) {
        bRun = b.retryDue();
        bDone = await bRun;
      }
    });
    for (let i = 0; i < tokens; i++) {
      await a.enqueue({
        providerId: 'demo',
        connectionId: `c${i}`,
        token: `token-${i}`,
        hint: 'refresh_token',
      });
    }
    t += 60 * 60_000; // all due
    const aDone = await a.retryDue();

    expect(bDone).toBeGreaterThan(0); // the second worker really took part
    expect([...revoked].sort()).toEqual(Array.from({ length: tokens }, (_, i) => `token-${i}`));
    expect(aDone + bDone).toBe(tokens);
    const rows = await storeA.db
      .selectFrom('revocations')
      .select(['attempts', 'token_sealed', 'done_at', 'last_error'])
      .execute();
    expect(rows).toHaveLength(tokens);
    for (const r of rows) {
      expect(r).toMatchObject({ attempts: 2, token_sealed: null, last_error: null });
      expect(r.done_at).not.toBeNull();
    }
  });
});
