import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';

/** Security 7: the SQLite database and its WAL/SHM files are owner-only, like the key file. */
describe('SQLite file modes', () => {
  let dir: string;
  let previousUmask: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nunq-modes-'));
    // The usual umask (022) would leave new files world-readable (0644) without our care.
    previousUmask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(previousUmask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database, its -wal and -shm 0600 (directory 0700), also after writes', async () => {
    const file = join(dir, 'data', 'nunq.db');
    const store = openStore(`sqlite:${file}`);
    try {
      await migrateToLatest(store);
      await store.db
        .insertInto('events')
        .values({ user_id: 'alice', type: 't', data: '{}', created_at: Date.now() })
        .execute();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) {
        expect(existsSync(f), f).toBe(true);
        expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
      }
      expect((statSync(join(dir, 'data')).mode & 0o777).toString(8)).toBe('700');
    } finally {
      await store.close();
    }
  });

  it('opens an existing database without changing it', async () => {
    const file = join(dir, 'nunq.db');
    const first = openStore(`sqlite:${file}`);
    await migrateToLatest(first);
    await first.close();
    const again = openStore(`sqlite:${file}`);
    try {
      expect(await migrateToLatest(again)).toEqual([]);
      expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    } finally {
      await again.close();
    }
  });
});
