import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Io, main } from '../../src/cli/main.js';
import { generateKey, Keyring, Sealer, sealedKeyId } from '../../src/crypto/index.js';
import type { Store } from '../../src/store/database.js';
import { sealedColumns } from '../../src/store/sealed-columns.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

interface FakeIo extends Io {
  stdout(): string;
  stderr(): string;
}

function fakeIo(cwd: string, env: Record<string, string | undefined> = {}): FakeIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env,
    cwd,
    isTTY: false,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}

const k1 = generateKey();
const k2 = generateKey();
const k3 = generateKey();

/** A config file for the test database with the given keys; key material comes from env. */
function configYaml(url: string, activeKey: string, keyIds: string[]): string {
  return `database:
  url: "${url}"
encryption:
  activeKey: ${activeKey}
  keys:
${keyIds.map((id) => `    - { id: ${id}, key: "\${KEY_${id.toUpperCase()}}" }`).join('\n')}
auth:
  mode: dev
`;
}

const env = { KEY_K1: k1, KEY_K2: k2, KEY_K3: k3 };

interface SealedValue {
  table: string;
  column: string;
  rowId: string;
  plaintext: string;
}

/** Seals values into several sealed columns under `sealer`'s active key; returns what it wrote. */
async function seed(store: Store, sealer: Sealer, connections: number): Promise<SealedValue[]> {
  const now = Date.now();
  const written: SealedValue[] = [];
  const s = (table: string, rowId: string, column: string) => {
    const plaintext = `${column}-${randomBytes(8).toString('hex')}`;
    written.push({ table, column, rowId, plaintext });
    return sealer.seal(plaintext, { table, rowId, field: column });
  };
  await store.db
    .insertInto('providers')
    .values({
      id: 'p1',
      type: 'oauth2',
      settings: '{}',
      client_secret_sealed: s('providers', 'p1', 'client_secret_sealed'),
      source: 'config',
      enabled: 1,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await store.db
    .insertInto('webhook_endpoints')
    .values({
      id: 'w1',
      url: 'https://hooks.example',
      secret_sealed: s('webhook_endpoints', 'w1', 'secret_sealed'),
      events: null,
      source: 'config',
      enabled: 1,
      created_at: now,
    })
    .execute();
  for (let i = 0; i < connections; i++) {
    const id = randomUUID();
    await store.db
      .insertInto('connections')
      .values({
        id,
        user_id: `user-${i}`,
        integration_id: 'i1',
        status: 'active',
        scopes: '[]',
        access_token_sealed: s('connections', id, 'access_token_sealed'),
        refresh_token_sealed: i % 2 === 0 ? s('connections', id, 'refresh_token_sealed') : null,
        refresh_failures: 0,
        version: 0,
        created_at: now,
        updated_at: now,
      })
      .execute();
  }
  return written;
}

/** Every sealed value in the database with its key id. */
async function allSealed(
  store: Store,
): Promise<Array<{ table: string; column: string; rowId: string; value: string }>> {
  const found = [];
  for (const t of sealedColumns) {
    const rows = await sql<Record<string, string | null>>`select * from ${sql.table(t.table)}`.execute(
      store.db,
    );
    for (const row of rows.rows) {
      for (const column of t.columns) {
        const value = row[column];
        if (typeof value === 'string')
          found.push({ table: t.table, column, rowId: String(row[t.idColumn]), value });
      }
    }
  }
  return found;
}

describe.each(databaseKinds)('nunq-connect keys rotate on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  let cwd: string;
  let seeded: SealedValue[];

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    cwd = mkdtempSync(join(tmpdir(), 'nunq-rotate-'));
    const sealerK1 = new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: k1 }] }));
    seeded = await seed(store, sealerK1, 25);
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('re-seals every value under the new active key and prints the final count', async () => {
    expect(seeded.length).toBe(2 + 25 + 13);
    const before = await allSealed(store);
    expect(before).toHaveLength(seeded.length);
    expect(before.every((v) => sealedKeyId(v.value) === 'k1')).toBe(true);

    const file = join(cwd, 'rotate-k2.yaml');
    writeFileSync(file, configYaml(database.url, 'k2', ['k2', 'k1']));
    const io = fakeIo(cwd, env);
    expect(await main(['keys', 'rotate', '--config', file], io)).toBe(0);
    expect(io.stdout()).toBe(
      `re-sealed ${seeded.length} values under key "k2"; 0 failed to open; 0 still under an old key\n`,
    );
    // Progress goes to stderr (a line per ten per cent off a terminal) and ends at the total.
    expect(io.stderr()).toContain(`rotating: ${seeded.length}/${seeded.length} (100%)`);

    const after = await allSealed(store);
    expect(after).toHaveLength(seeded.length);
    expect(after.filter((v) => sealedKeyId(v.value) !== 'k2')).toEqual([]);
    // The old key can go: every value opens with k2 alone, to what was sealed.
    const onlyK2 = new Sealer(Keyring.fromConfig({ activeKeyId: 'k2', keys: [{ id: 'k2', key: k2 }] }));
    for (const v of seeded) {
      const stored = after.find((a) => a.table === v.table && a.column === v.column && a.rowId === v.rowId);
      expect(stored, `${v.table}.${v.column} ${v.rowId}`).toBeDefined();
      expect(onlyK2.open(stored!.value, { table: v.table, rowId: v.rowId, field: v.column })).toBe(
        v.plaintext,
      );
    }
    // The rotation is audited, with counts and no key material.
    const audit = await store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'keys.rotated')
      .execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.data)).toEqual({ activeKey: 'k2', rotated: seeded.length, failed: 0 });
    expect(audit[0]!.data).not.toContain(k2);
  });

  it('has nothing to do when run again (resumable, idempotent)', async () => {
    const file = join(cwd, 'rotate-k2.yaml');
    const before = await allSealed(store);
    const io = fakeIo(cwd, env);
    expect(await main(['keys', 'rotate', '--config', file], io)).toBe(0);
    expect(io.stdout()).toBe(
      're-sealed 0 values under key "k2"; 0 failed to open; 0 still under an old key\n',
    );
    expect(await allSealed(store)).toEqual(before);
  });

  it('reports a value that does not open, leaves it alone, and exits 1', async () => {
    // Move one ciphertext to another row: its AAD no longer matches, so it cannot be opened.
    const rows = await store.db
      .selectFrom('connections')
      .select(['id', 'access_token_sealed'])
      .orderBy('id')
      .execute();
    const [a, b] = rows as [(typeof rows)[number], (typeof rows)[number]];
    await store.db
      .updateTable('connections')
      .set({ access_token_sealed: a.access_token_sealed })
      .where('id', '=', b.id)
      .execute();

    const file = join(cwd, 'rotate-k3.yaml');
    writeFileSync(file, configYaml(database.url, 'k3', ['k3', 'k2']));
    const io = fakeIo(cwd, env);
    expect(await main(['keys', 'rotate', '--config', file], io)).toBe(1);
    expect(io.stdout()).toBe(
      `re-sealed ${seeded.length - 1} values under key "k3"; 1 failed to open; 1 still under an old key\n`,
    );
    expect(io.stderr()).toContain(
      `cannot open connections.access_token_sealed of row ${b.id}: decrypt_failed`,
    );
    const moved = await store.db
      .selectFrom('connections')
      .select('access_token_sealed')
      .where('id', '=', b.id)
      .executeTakeFirstOrThrow();
    expect(moved.access_token_sealed).toBe(a.access_token_sealed);
    expect(sealedKeyId(moved.access_token_sealed!)).toBe('k2');
  });

  it('refuses a config whose keys do not load, without touching anything', async () => {
    const before = await allSealed(store);
    const file = join(cwd, 'bad-key.yaml');
    writeFileSync(file, configYaml(database.url, 'k3', ['k3']));
    const io = fakeIo(cwd, { KEY_K3: 'too-short' });
    expect(await main(['keys', 'rotate', '--config', file], io)).toBe(1);
    expect(io.stderr()).toContain('encryption.keys[0].key: must be base64 of exactly 32 bytes');
    expect(io.stderr()).not.toContain('too-short');
    expect(await allSealed(store)).toEqual(before);
  });
});
