import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecryptionError, generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import type { Store } from '../../src/store/database.js';
import { countStaleValues, rotateKeys } from '../../src/store/key-rotation.js';
import { sealedColumns } from '../../src/store/sealed-columns.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const k1 = generateKey();
const k2 = generateKey();
const onlyK1 = Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: k1 }] });
const bothK2Active = Keyring.fromConfig({
  activeKeyId: 'k2',
  keys: [
    { id: 'k2', key: k2 },
    { id: 'k1', key: k1 },
  ],
});
const onlyK2 = Keyring.fromConfig({ activeKeyId: 'k2', keys: [{ id: 'k2', key: k2 }] });

/** Distinctive plaintexts, so a raw scan can look for each. */
const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

interface Seeded {
  plaintexts: string[];
  connectionIds: string[];
}

/** Fills every sealed column of every table, sealed under `keyring`'s active key. */
async function seed(store: Store, sealer: Sealer, connections: number): Promise<Seeded> {
  const now = Date.now();
  const plaintexts: string[] = [];
  const s = (table: string, rowId: string, field: string, label: string) => {
    const p = secret(label);
    plaintexts.push(p);
    return sealer.seal(p, { table, rowId, field });
  };
  await store.db
    .insertInto('providers')
    .values({
      id: 'p1',
      type: 'oidc',
      settings: '{}',
      client_secret_sealed: s('providers', 'p1', 'client_secret_sealed', 'provider-secret'),
      source: 'config',
      enabled: 1,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await store.db
    .insertInto('integrations')
    .values({
      id: 'i1',
      kind: 'mcp',
      name: 'I1',
      provider_id: null,
      settings: '{}',
      client_secret_sealed: s('integrations', 'i1', 'client_secret_sealed', 'mcp-secret'),
      source: 'config',
      enabled: 1,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await store.db
    .insertInto('pending_authorizations')
    .values({
      state_hash: 'h1',
      user_id: 'u',
      integration_id: 'i1',
      connection_id: null,
      code_verifier_sealed: s('pending_authorizations', 'h1', 'code_verifier_sealed', 'verifier'),
      nonce: null,
      expected_issuer: null,
      redirect_uri: 'http://x/cb',
      return_to: '/',
      created_at: now,
      expires_at: now + 60_000,
      consumed_at: null,
    })
    .execute();
  await store.db
    .insertInto('oauth_clients')
    .values({
      id: 'oc1',
      issuer: 'https://as.example',
      redirect_uri: 'http://x/cb',
      client_id: 'dyn',
      client_secret_sealed: s('oauth_clients', 'oc1', 'client_secret_sealed', 'dcr-secret'),
      metadata: '{}',
      created_at: now,
      expires_at: null,
    })
    .execute();
  await store.db
    .insertInto('webhook_endpoints')
    .values({
      id: 'w1',
      url: 'https://hooks.example',
      secret_sealed: s('webhook_endpoints', 'w1', 'secret_sealed', 'webhook-secret'),
      events: null,
      source: 'config',
      enabled: 1,
      created_at: now,
    })
    .execute();
  const connectionIds: string[] = [];
  const rows = [];
  for (let i = 0; i < connections; i++) {
    const id = randomUUID();
    connectionIds.push(id);
    rows.push({
      id,
      user_id: `user-${i}`,
      integration_id: 'i1',
      status: 'active' as const,
      scopes: '[]',
      access_token_sealed: s('connections', id, 'access_token_sealed', 'access'),
      refresh_token_sealed: s('connections', id, 'refresh_token_sealed', 'refresh'),
      id_token_sealed: s('connections', id, 'id_token_sealed', 'idtoken'),
      refresh_failures: 0,
      version: 0,
      created_at: now,
      updated_at: now,
    });
  }
  for (let i = 0; i < rows.length; i += 200)
    await store.db
      .insertInto('connections')
      .values(rows.slice(i, i + 200))
      .execute();
  return { plaintexts, connectionIds };
}

/** Opens every sealed value in the database; returns how many, throws on the first failure. */
async function openAll(store: Store, sealer: Sealer): Promise<number> {
  let n = 0;
  for (const t of sealedColumns) {
    const rows = await sql<Record<string, string | null>>`select * from ${sql.table(t.table)}`.execute(
      store.db,
    );
    for (const row of rows.rows) {
      for (const column of t.columns) {
        const value = row[column];
        if (value === null || value === undefined) continue;
        sealer.open(value, { table: t.table, rowId: String(row[t.idColumn]), field: column });
        n++;
      }
    }
  }
  return n;
}

/** Everything the database holds, as text: the SQLite files byte for byte, or every PostgreSQL row. */
async function rawDump(store: Store, database: TestDatabase): Promise<string> {
  if (database.file !== undefined) {
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(store.db);
    const dir = dirname(database.file);
    return readdirSync(dir)
      .map((f) => readFileSync(`${dir}/${f}`).toString('latin1'))
      .join('\n');
  }
  const tables = await sql<{
    tablename: string;
  }>`select tablename from pg_tables where schemaname = 'public'`.execute(store.db);
  let dump = '';
  for (const { tablename } of tables.rows) {
    const rows = await sql<{ t: string }>`select t::text as t from ${sql.table(tablename)} t`.execute(
      store.db,
    );
    dump += rows.rows.map((r) => r.t).join('\n');
  }
  return dump;
}

describe.each(databaseKinds)('sealed values at rest on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  let seeded: Seeded;
  const sealerK1 = new Sealer(onlyK1);

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    seeded = await seed(store, sealerK1, 300);
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('stores no plaintext of any sealed value', async () => {
    const dump = await rawDump(store, database);
    expect(dump.length).toBeGreaterThan(1000);
    expect(dump).toContain('v1.k1.'); // the sealed values are there…
    const found = seeded.plaintexts.filter((p) => dump.includes(p));
    expect(found).toEqual([]); // …and none of their plaintexts
  });

  it('refuses a ciphertext swapped to another row or field, or tampered with', async () => {
    const [a, b] = seeded.connectionIds as [string, string];
    const rowA = await store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', a)
      .executeTakeFirstOrThrow();
    const rowB = await store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', b)
      .executeTakeFirstOrThrow();
    // Another row's value in this row's column.
    expect(() =>
      sealerK1.open(rowB.access_token_sealed!, {
        table: 'connections',
        rowId: a,
        field: 'access_token_sealed',
      }),
    ).toThrow(DecryptionError);
    // This row's refresh token where its access token belongs.
    expect(() =>
      sealerK1.open(rowA.refresh_token_sealed!, {
        table: 'connections',
        rowId: a,
        field: 'access_token_sealed',
      }),
    ).toThrow(DecryptionError);
    // A flipped bit in the stored payload.
    const v = rowA.access_token_sealed!;
    const i = v.length - 10;
    const flipped = v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
    expect(() =>
      sealerK1.open(flipped, { table: 'connections', rowId: a, field: 'access_token_sealed' }),
    ).toThrow(DecryptionError);
    // The right key id with the wrong key bytes.
    const impostor = new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: k2 }] }));
    expect(() => impostor.open(v, { table: 'connections', rowId: a, field: 'access_token_sealed' })).toThrow(
      DecryptionError,
    );
    // And the untouched value still opens.
    expect(sealerK1.open(v, { table: 'connections', rowId: a, field: 'access_token_sealed' })).toMatch(
      /^access-/,
    );
  });

  it('rotates every value to the new key while 8 readers keep reading, then works without the old key', async () => {
    const readerSealer = new Sealer(bothK2Active);
    expect(await countStaleValues(store, bothK2Active)).toBe(seeded.plaintexts.length);
    let reading = true;
    let reads = 0;
    const failures: unknown[] = [];
    const readers = Array.from({ length: 8 }, async () => {
      while (reading) {
        try {
          const n = await openAll(store, readerSealer);
          reads += n;
        } catch (error) {
          failures.push(error);
        }
        await new Promise((r) => setImmediate(r));
      }
    });
    const progress: number[] = [];
    const result = await rotateKeys(store, bothK2Active, readerSealer, {
      batchSize: 50,
      onProgress: (p) => progress.push(p.done),
    });
    reading = false;
    await Promise.all(readers);

    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(seeded.plaintexts.length);
    expect(result.rotated).toBe(seeded.plaintexts.length);
    expect(result.failed).toEqual([]);
    expect(result.remaining).toBe(0);
    expect(progress.at(-1)).toBe(seeded.plaintexts.length);
    // The old key can go: everything opens with k2 alone.
    expect(await openAll(store, new Sealer(onlyK2))).toBe(seeded.plaintexts.length);
    // A second run has nothing to do (resumable and idempotent).
    expect((await rotateKeys(store, bothK2Active, readerSealer)).rotated).toBe(0);
    // And the plaintexts are still nowhere in the raw database.
    const dump = await rawDump(store, database);
    expect(seeded.plaintexts.filter((p) => dump.includes(p))).toEqual([]);
  });

  it('reports a value that does not open instead of failing the whole rotation', async () => {
    const keyring = Keyring.fromConfig({
      activeKeyId: 'k3',
      keys: [
        { id: 'k3', key: generateKey() },
        { id: 'k2', key: k2 },
      ],
    });
    const id = seeded.connectionIds[5]!;
    const row = await store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const other = seeded.connectionIds[6]!;
    // Move a ciphertext to another row: it must fail to open there.
    await store.db
      .updateTable('connections')
      .set({ access_token_sealed: row.access_token_sealed })
      .where('id', '=', other)
      .execute();
    const result = await rotateKeys(store, keyring, new Sealer(keyring));
    expect(result.failed).toEqual([
      { table: 'connections', column: 'access_token_sealed', rowId: other, code: 'decrypt_failed' },
    ]);
    expect(result.rotated).toBe(seeded.plaintexts.length - 1);
    expect(result.remaining).toBe(1);
  });
});
