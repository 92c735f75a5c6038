import { DEFAULT_MIGRATION_TABLE, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Store } from './database.js';
import * as m0001 from './migrations/0001_initial.js';
import * as m0002 from './migrations/0002_revocations_confirmations.js';
import * as m0003 from './migrations/0003_retention_indexes.js';
import * as m0004 from './migrations/0004_used_hand_offs.js';
import * as m0005 from './migrations/0005_refresh_not_before.js';
import * as m0007 from './migrations/0007_admin_audience.js';
import * as m0008 from './migrations/0008_browser_binding.js';
import * as m0009 from './migrations/0009_connection_changes.js';
import * as m0010 from './migrations/0010_mcp_registrations.js';
import * as m0011 from './migrations/0011_mcp_gateway.js';
import * as m0012 from './migrations/0012_pending_scopes.js';
import * as m0013 from './migrations/0013_connection_api_base.js';
import * as m0014 from './migrations/0014_audit_subjects.js';
import * as m0015 from './migrations/0015_catalog_admin.js';
import * as m0016 from './migrations/0016_connection_writes.js';
import * as m0017 from './migrations/0017_claim_room.js';

/** The ordered list of migrations; each receives the engine kind for the few dialect differences. */
function migrationsFor(store: Store): Record<string, Migration> {
  return {
    '0001_initial': { up: (db) => m0001.up(db, store.kind) },
    '0002_revocations_confirmations': { up: (db) => m0002.up(db) },
    '0003_retention_indexes': { up: (db) => m0003.up(db) },
    '0004_used_hand_offs': { up: (db) => m0004.up(db) },
    '0005_refresh_not_before': { up: (db) => m0005.up(db) },
    '0007_admin_audience': { up: (db) => m0007.up(db) },
    '0008_browser_binding': { up: (db) => m0008.up(db) },
    '0009_connection_changes': { up: (db) => m0009.up(db, store.kind) },
    '0010_mcp_registrations': { up: (db) => m0010.up(db) },
    '0011_mcp_gateway': { up: (db) => m0011.up(db) },
    '0012_pending_scopes': { up: (db) => m0012.up(db) },
    '0013_connection_api_base': { up: (db) => m0013.up(db) },
    '0014_audit_subjects': { up: (db) => m0014.up(db) },
    '0015_catalog_admin': { up: (db) => m0015.up(db) },
    '0016_connection_writes': { up: (db) => m0016.up(db, store.kind) },
    '0017_claim_room': { up: (db) => m0017.up(db, store.kind) },
  };
}

/** Thrown when a migration fails; names the migration, never data. */
export class MigrationError extends Error {
  readonly code = 'migration_failed';
}

/**
 * Applies every pending migration. Safe to run from several instances at once: Kysely's
 * migrator takes a database lock (an advisory lock on PostgreSQL).
 */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(store) };
  const migrator = new Migrator({ db: store.db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined) {
    throw new MigrationError(`migration ${failed?.migrationName ?? '(unknown)'} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Which migrations a database has had: applied, still pending, and applied ones this version does not know. */
export interface MigrationStatus {
  applied: string[];
  pending: string[];
  /** Applied by a newer version (a downgrade): `migrateToLatest` refuses such a database. */
  unknown: string[];
}

/** Reads the migration state without changing anything (for `doctor`): no table is created, nothing applied. */
export async function migrationStatus(store: Store): Promise<MigrationStatus> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(store) };
  const infos = await new Migrator({ db: store.db, provider }).getMigrations();
  const known = new Set(infos.map((m) => m.name));
  let recorded: string[] = [];
  try {
    const rows = await sql<{ name: string }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(
      store.db,
    );
    recorded = rows.rows.map((r) => r.name);
  } catch {
    // No migration table yet: nothing applied.
  }
  return {
    applied: infos.filter((m) => m.executedAt !== undefined).map((m) => m.name),
    pending: infos.filter((m) => m.executedAt === undefined).map((m) => m.name),
    unknown: recorded.filter((name) => !known.has(name)).sort(),
  };
}
