import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  configKeySource,
  generateKey,
  KeyringError,
  type KeySource,
  loadKeyring,
} from '../../src/crypto/index.js';
import { rawColumn } from '../../src/store/key-rotation.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

const provider = {
  id: 'p1',
  type: 'oauth2',
  authorizationEndpoint: 'https://as.example/authorize',
  tokenEndpoint: 'https://as.example/token',
  clientId: 'nunq',
  clientSecret: 'key-source-test-client-secret',
};

describe('the config key source', () => {
  it("hands over the config's keys as they are, and shows no key material", async () => {
    const keys = [
      { id: 'k2', key: generateKey() },
      { id: 'k1', key: generateKey() },
    ];
    const source = configKeySource({ activeKey: 'k2', keys });
    expect(await source.load()).toEqual({ activeKeyId: 'k2', keys });
    const keyring = await loadKeyring(source);
    expect(keyring.activeKeyId).toBe('k2');
    expect(keyring.ids()).toEqual(['k2', 'k1']);
    const shown = `${source.description} ${JSON.stringify(source)} ${inspect(source)}`;
    for (const { key } of keys) expect(shown).not.toContain(key);
  });

  it('is validated like a config file: a short key or a missing active key is refused', async () => {
    const short: KeySource = {
      description: 'test',
      load: async () => ({ activeKeyId: 'a', keys: [{ id: 'a', key: Buffer.alloc(16).toString('base64') }] }),
    };
    await expect(loadKeyring(short)).rejects.toMatchObject({ code: 'key_invalid' });
    const noActive: KeySource = {
      description: 'test',
      load: async () => ({ activeKeyId: 'b', keys: [{ id: 'a', key: generateKey() }] }),
    };
    await expect(loadKeyring(noActive)).rejects.toBeInstanceOf(KeyringError);
  });
});

describe('the service with a key source', () => {
  let svc: TestService | undefined;
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await svc?.close();
    await database?.drop();
    svc = undefined;
  });

  it("seals under the source's keys instead of the config's", async () => {
    database = await createTestDatabase('sqlite');
    let asked = 0;
    const kms: KeySource = {
      description: 'test KMS',
      load: async () => {
        asked += 1;
        return { activeKeyId: 'kms1', keys: [{ id: 'kms1', key: generateKey() }] };
      },
    };
    svc = await startTestService({ database, providers: [provider], serviceOptions: { keySource: kms } });
    expect(asked).toBe(1);
    expect(svc.service.ctx.keyring.activeKeyId).toBe('kms1');
    const [sealed] = await rawColumn(svc.service.ctx.store.db, 'providers', 'client_secret_sealed');
    expect(String(sealed)).toMatch(/^v1\.kms1\./);
  });

  it("seals under the config's keys without one (unchanged behaviour)", async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database, providers: [provider] });
    const [sealed] = await rawColumn(svc.service.ctx.store.db, 'providers', 'client_secret_sealed');
    expect(String(sealed)).toMatch(/^v1\.k1\./);
  });
});
