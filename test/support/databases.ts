import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type DatabaseKind, openStore, type Store } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';

/** The PostgreSQL server the suite uses; each test file makes and drops its own database in it. */
export const postgresAdminUrl = process.env.NUNQ_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const databaseKinds: DatabaseKind[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  kind: DatabaseKind;
  /** A `database.url` for the service pointing at this test's own database. */
  url: string;
  /** Path of the SQLite file (for raw scans); undefined on PostgreSQL. */
  file?: string;
  drop(): Promise<void>;
}

/** Makes a fresh, empty database of the given kind, private to the caller. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'nunq-test-'));
    const file = join(dir, 'nunq.db');
    return {
      kind,
      url: `sqlite:${file}`,
      file,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `nunq_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: postgresAdminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A fresh database, opened and migrated. */
export async function createTestStore(kind: DatabaseKind): Promise<{ store: Store; database: TestDatabase }> {
  const database = await createTestDatabase(kind);
  const store = openStore(database.url);
  await migrateToLatest(store);
  return { store, database };
}
