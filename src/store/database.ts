import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, type SqliteDatabase, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

export type DatabaseKind = 'sqlite' | 'postgres';

/** An open database: the Kysely instance plus which engine it is (locking differs per engine). */
export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  /** Which database this is, for error messages: the SQLite path, or the URL with its password hidden. */
  readonly label: string;
  close(): Promise<void>;
}

/** Thrown when a database URL cannot be understood; names the problem, never the password. */
export class DatabaseUrlError extends Error {
  readonly code = 'database_url_invalid';
}

/**
 * The database cannot be opened or does not answer. The message names which one (`database.url`,
 * password hidden) and the driver's reason, so an operator knows what to fix.
 */
export class DatabaseUnavailableError extends Error {
  readonly code = 'database_unavailable';
  constructor(label: string, reason: unknown) {
    super(`database.url ${label}: ${describeReason(reason)}`, { cause: reason });
  }
}

function describeReason(reason: unknown): string {
  if (!(reason instanceof Error)) return String(reason);
  const code = (reason as { code?: unknown }).code;
  // AggregateError (every address refused) carries no message of its own.
  const message = reason.message || (reason instanceof AggregateError ? String(reason.errors[0]) : '');
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * A database URL fit for messages and logs: the password (in the userinfo or a `password`
 * parameter) replaced by `***`; a SQLite path as it was resolved.
 */
export function redactDatabaseUrl(url: string): string {
  if (!url.startsWith('postgres://') && !url.startsWith('postgresql://')) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()])
      if (/pass|secret|key|token/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return 'postgres://(not a valid URL)';
  }
}

/**
 * Opens the database named by `url`: `sqlite:<path>` (`sqlite::memory:` for tests) or
 * `postgres://user@host:port/db` (an optional `?schema=name` sets the search_path).
 */
export function openStore(url: string, options: { cwd?: string; poolSize?: number } = {}): Store {
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length), options.cwd ?? process.cwd());
  if (url.startsWith('postgres://') || url.startsWith('postgresql://'))
    return openPostgres(url, options.poolSize);
  throw new DatabaseUrlError('database.url must start with sqlite: or postgres://');
}

function openSqlite(path: string, cwd: string): Store {
  const file = path === ':memory:' ? ':memory:' : resolve(cwd, path);
  const label = `sqlite:${file}`;
  let database: SQLite.Database | undefined;
  try {
    if (file !== ':memory:') createPrivateFile(file);
    database = new SQLite(file);
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database?.close();
    throw new DatabaseUnavailableError(label, error);
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  return { db, kind: 'sqlite', label, close: () => db.destroy() };
}

/**
 * Creates the SQLite file owner-only (0600, in a 0700 directory when it makes one) before SQLite
 * opens it: it holds sealed tokens and hashed sessions. SQLite gives its `-wal` and `-shm`
 * files the database file's mode. An existing file keeps the mode its operator chose.
 */
function createPrivateFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * Kysely's SQLite driver prepares every statement anew; preparing costs more than running a
 * short query. Our queries are parameterised, so a few hundred distinct SQL texts cover them all:
 * keep each prepared statement and reuse it while it is not busy (being iterated).
 */
function withStatementCache(database: SQLite.Database, max = 500): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText) {
      const known = statements.get(sqlText);
      if (known !== undefined && !known.busy) return known;
      const statement = database.prepare(sqlText);
      if (known === undefined) {
        if (statements.size >= max) statements.delete(statements.keys().next().value as string);
        statements.set(sqlText, statement);
      }
      return statement;
    },
  };
}

function openPostgres(url: string, poolSize = 10): Store {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseUrlError('database.url is not a valid postgres:// URL');
  }
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  const label = redactDatabaseUrl(url);
  if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new DatabaseUrlError('database.url: schema must be a lower-case SQL identifier');
  }
  const pool = new pg.Pool({
    connectionString: parsed.toString(),
    max: poolSize,
    // bigint columns hold epoch milliseconds, well inside Number's safe range.
    types: { getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)) },
    ...(schema === null ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, kind: 'postgres', label, close: () => db.destroy() };
}

/** Runs a trivial query; used by `/healthz` and by the start-up wait. */
export async function pingStore(store: Store): Promise<void> {
  await sql`select 1`.execute(store.db);
}

/**
 * Waits for the database to answer, retrying with exponential backoff (capped at `maxDelayMs`),
 * reporting each failure through `onRetry` so an operator sees why the service is not up yet.
 */
export async function waitForStore(
  store: Store,
  options: {
    attempts?: number;
    maxDelayMs?: number;
    onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
    sleep?: (ms: number) => Promise<void>;
  } = {},
): Promise<void> {
  const attempts = options.attempts ?? 10;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      await pingStore(store);
      return;
    } catch (error) {
      if (attempt >= attempts) throw new DatabaseUnavailableError(store.label, error);
      const delayMs = Math.min(options.maxDelayMs ?? 10_000, 250 * 2 ** (attempt - 1));
      options.onRetry?.(attempt, delayMs, error);
      await sleep(delayMs);
    }
  }
}
