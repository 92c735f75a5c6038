import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, validateConfig } from '../../src/config/index.js';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { syncCatalogFromConfig } from '../../src/service/catalog-sync.js';
import type { Store } from '../../src/store/database.js';
import { CatalogRepository } from '../../src/store/repos/catalog.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const count = 100_000;
const key = generateKey();

function configWith(integrations: number, skip?: number): Config {
  return validateConfig({
    encryption: { activeKey: 'k1', keys: [{ id: 'k1', key }] },
    auth: { mode: 'dev' },
    providers: [
      {
        id: 'p',
        type: 'oauth2',
        authorizationEndpoint: 'https://p.example/a',
        tokenEndpoint: 'https://p.example/t',
        clientId: 'c',
      },
    ],
    integrations: Array.from({ length: integrations }, (_, i) => i)
      .filter((i) => i !== skip)
      .map((i) => ({ id: `i-${i}`, name: `Integration ${i}`, provider: 'p', scopes: ['read'] })),
  });
}

/** Bad input 6: a config that check-config accepts, serve can sync, however many integrations. */
describe.each(databaseKinds)('catalog sync of %i integrations on %s'.replace('%i', String(count)), (kind) => {
  let store: Store;
  let database: TestDatabase;
  let catalog: CatalogRepository;

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    const keyring = Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key }] });
    catalog = new CatalogRepository(store.db, new Sealer(keyring));
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  const enabledCount = async () =>
    Number(
      (
        await store.db
          .selectFrom('integrations')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('enabled', '=', 1)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('writes them all, then disables the one a later config drops, then changes nothing on a rerun', async () => {
    await syncCatalogFromConfig(configWith(count), catalog, 1000);
    expect(await enabledCount()).toBe(count);

    await syncCatalogFromConfig(configWith(count, 4242), catalog, 2000);
    expect(await enabledCount()).toBe(count - 1);
    expect((await catalog.getIntegration('i-4242'))?.enabled).toBe(false);

    await syncCatalogFromConfig(configWith(count, 4242), catalog, 3000);
    const touched = await store.db
      .selectFrom('integrations')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('updated_at', '=', 3000)
      .executeTakeFirstOrThrow();
    expect(Number(touched.n)).toBe(0);
  }, 120_000);
});
