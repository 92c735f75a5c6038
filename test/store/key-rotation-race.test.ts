/**
 * Key rotation against a concurrent writer: the service keeps refreshing while `keys rotate` runs,
 * so a value it rewrites between rotation's read and rotation's write must survive. The writer is
 * injected exactly there (after rotation's SELECT has returned, before its UPDATE) through a Kysely
 * plugin on the store rotation uses; the write itself goes through a second, plain handle.
 */
import { randomUUID } from 'node:crypto';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, Keyring, Sealer, sealedKeyId } from '../../src/crypto/index.js';
import { openStore, type Store } from '../../src/store/database.js';
import { rotateKeys } from '../../src/store/key-rotation.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const k1 = generateKey();
const k2 = generateKey();
const onK1 = new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: k1 }] }));
const ringK2 = Keyring.fromConfig({
  activeKeyId: 'k2',
  keys: [
    { id: 'k2', key: k2 },
    { id: 'k1', key: k1 },
  ],
});
const onK2 = new Sealer(ringK2);
const ctxOf = (rowId: string, field: string) => ({ table: 'connections', rowId, field });

/** Runs `write` once, right after the first query whose result rows contain `rowId` (rotation's SELECT). */
function writerAfterRead(rowId: string, write: () => Promise<void>): KyselyPlugin & { fired: boolean } {
  const plugin = {
    fired: false,
    transformQuery: (args: PluginTransformQueryArgs) => args.node,
    async transformResult(args: PluginTransformResultArgs) {
      const rows = args.result.rows as Array<Record<string, unknown>>;
      if (!plugin.fired && rows.some((r) => r.id === rowId && 'value' in r)) {
        plugin.fired = true;
        await write();
      }
      return args.result;
    },
  };
  return plugin;
}

describe.each(databaseKinds)('key rotation next to a concurrent writer on %s', (kind) => {
  let store: Store;
  /** The concurrent writer's own handle (SQLite: its own connection; Kysely holds rotation's meanwhile). */
  let other: Store;
  let database: TestDatabase;

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    other = openStore(database.url);
  });
  afterAll(async () => {
    await other?.close();
    await store?.close();
    await database?.drop();
  });

  /** Inserts `n` active connections with access and refresh tokens sealed under k1; their ids. */
  async function seed(n: number): Promise<string[]> {
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = randomUUID();
      ids.push(id);
      await store.db
        .insertInto('connections')
        .values({
          id,
          user_id: `user-${i}-${id}`,
          integration_id: 'i1',
          status: 'active',
          scopes: '[]',
          access_token_sealed: onK1.seal(`at-${id}`, ctxOf(id, 'access_token_sealed')),
          refresh_token_sealed: onK1.seal(`rt-${id}`, ctxOf(id, 'refresh_token_sealed')),
          refresh_failures: 0,
          version: 0,
          created_at: now,
          updated_at: now,
        })
        .execute();
    }
    return ids;
  }

  async function sealedOf(id: string, via: Store = store) {
    return via.db
      .selectFrom('connections')
      .select(['access_token_sealed', 'refresh_token_sealed', 'version'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  }

  /** What a refresh on an instance with `sealer` writes: new tokens, version + 1, one statement. */
  async function refreshWrite(id: string, sealer: Sealer, at: string, rt: string): Promise<void> {
    const current = await sealedOf(id, other);
    await other.db
      .updateTable('connections')
      .set({
        access_token_sealed: sealer.seal(at, ctxOf(id, 'access_token_sealed')),
        refresh_token_sealed: sealer.seal(rt, ctxOf(id, 'refresh_token_sealed')),
        version: current.version + 1,
      })
      .where('id', '=', id)
      .where('version', '=', current.version)
      .execute();
  }

  it('never overwrites a refresh written under the new key between its read and its write', async () => {
    const ids = await seed(5);
    const target = ids[2]!;
    const writer = writerAfterRead(target, () => refreshWrite(target, onK2, 'at-NEW', 'rt-NEW'));
    const racing: Store = { ...store, db: store.db.withPlugin(writer) };

    const result = await rotateKeys(racing, ringK2, onK2, { batchSize: 100 });

    expect(writer.fired).toBe(true);
    const after = await sealedOf(target);
    // The refresh's tokens are what is stored, not rotation's re-seal of the old ones.
    expect(onK2.open(after.access_token_sealed!, ctxOf(target, 'access_token_sealed'))).toBe('at-NEW');
    expect(onK2.open(after.refresh_token_sealed!, ctxOf(target, 'refresh_token_sealed'))).toBe('rt-NEW');
    expect(after.version).toBe(1);
    // The access token column's batch raced; the refresh token column, read after the write, found
    // the target already under k2.
    expect(result).toMatchObject({ rotated: ids.length * 2 - 2, raced: 1, failed: [], remaining: 0 });
    for (const id of ids.filter((i) => i !== target)) {
      const other = await sealedOf(id);
      expect(sealedKeyId(other.access_token_sealed!)).toBe('k2');
      expect(onK2.open(other.access_token_sealed!, ctxOf(id, 'access_token_sealed'))).toBe(`at-${id}`);
    }
    await store.db.deleteFrom('connections').execute();
  });

  it('never overwrites a refresh written under the old key by an instance still on the old config', async () => {
    const ids = await seed(3);
    const target = ids[0]!;
    const writer = writerAfterRead(target, () => refreshWrite(target, onK1, 'at-OLDCFG', 'rt-OLDCFG'));
    const racing: Store = { ...store, db: store.db.withPlugin(writer) };

    const result = await rotateKeys(racing, ringK2, onK2, { batchSize: 100 });

    expect(writer.fired).toBe(true);
    const after = await sealedOf(target);
    expect(onK2.open(after.access_token_sealed!, ctxOf(target, 'access_token_sealed'))).toBe('at-OLDCFG');
    // Left under k1 for the next run (which finds it again), never replaced by the stale value.
    expect(sealedKeyId(after.access_token_sealed!)).toBe('k1');
    expect(result).toMatchObject({ raced: 1, remaining: 1, failed: [] });
    const again = await rotateKeys(store, ringK2, onK2);
    expect(again).toMatchObject({ rotated: 1, raced: 0, remaining: 0 });
    const final = await sealedOf(target);
    expect(onK2.open(final.access_token_sealed!, ctxOf(target, 'access_token_sealed'))).toBe('at-OLDCFG');
    await store.db.deleteFrom('connections').execute();
  });
});
