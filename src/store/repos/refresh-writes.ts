import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DatabaseKind } from '../database.js';
import type { ConnectionsTable, Database, Millis } from '../types.js';

/** The token columns a refresh writes (sealed already); columns left out keep their value. */
export type RefreshedTokenColumns = Pick<
  ConnectionsTable,
  'access_token_sealed' | 'token_type' | 'access_token_expires_at' | 'last_refreshed_at' | 'next_refresh_at'
> &
  Partial<Pick<ConnectionsTable, 'refresh_token_sealed' | 'id_token_sealed' | 'scopes'>>;

/** One refreshed token set waiting to be written, and the caller waiting for the outcome. */
interface PendingWrite {
  id: string;
  version: number;
  owner: string;
  columns: RefreshedTokenColumns;
  now: Millis;
  /** When this write stops waiting for others to join it (`performance.now()` time). */
  due: number;
  settle(written: boolean): void;
  fail(error: unknown): void;
}

export interface RefreshWritesOptions {
  /** How long a write waits for others to join it (ms), unless it gives its own. A refresh took a provider round trip; this is noise beside it. */
  windowMs?: number;
  /** Rows per statement at most (each row is 12 parameters; both engines allow far more). */
  maxRows?: number;
}

/**
 * The fenced write of refreshed tokens, grouped: each write waits up to its window (and behind
 * the statement being written) for others to join it, and the writes waiting then go to the
 * database as one statement,
 * `WITH v(…) AS (…) UPDATE connections … FROM v WHERE id = v.id AND version = v.version
 * RETURNING id` (`v` from one array parameter per column on PostgreSQL, a VALUES list on SQLite). Each row keeps its own version fence and lease release; each caller still
 * learns whether its own row was written, and only after its statement has committed (a rotated
 * refresh token is never reported saved before it is). When a grouped statement fails, its rows
 * are written one by one, so that one row's failure is that row's alone.
 *
 * Why: in a refresh storm every refresh ended in its own UPDATE, a round trip and a commit each.
 * Measured on this machine (3,000 rows, 8 writers): one UPDATE per row cost 360 µs of our CPU
 * and 300 µs of the PostgreSQL server's, and 210 µs on SQLite; eight rows per statement cost 90 +
 * 110 µs and 72 µs per row (docs/benchmarks.md, Refresh storm).
 */
export class RefreshWrites {
  readonly #db: Kysely<Database>;
  readonly #kind: DatabaseKind;
  readonly #windowMs: number;
  readonly #maxRows: number;
  #queue: PendingWrite[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** When `#timer` fires (`performance.now()` time). */
  #timerAt = Number.POSITIVE_INFINITY;
  #writing = false;

  constructor(db: Kysely<Database>, kind: DatabaseKind, options: RefreshWritesOptions = {}) {
    this.#db = db;
    this.#kind = kind;
    this.#windowMs = options.windowMs ?? 2;
    this.#maxRows = options.maxRows ?? 64;
  }

  /**
   * Writes the new token set of row `id` if it is still at `version`, clears its failure state,
   * bumps its version and releases `owner`'s lease (a taker's lease stays). True if written;
   * false if the row was deleted or changed meanwhile (nothing is then written). `windowMs`:
   * how long this write may wait for others to join it (a scheduled refresh, which nobody waits
   * for, can wait longer and so make the statements of a storm larger).
   * @see RFC 9700 §4.14 (a rotated refresh token lands with its access token or not at all)
   */
  write(
    id: string,
    version: number,
    owner: string,
    columns: RefreshedTokenColumns,
    now: Millis,
    windowMs = this.#windowMs,
  ): Promise<boolean> {
    return new Promise<boolean>((settle, fail) => {
      const due = performance.now() + windowMs;
      this.#queue.push({ id, version, owner, columns, now, due, settle, fail });
      if (this.#writing) return;
      if (this.#queue.length >= this.#maxRows) this.#flush();
      else this.#flushAt(due);
    });
  }

  /** Makes the timer fire by `at` (an earlier write's timer stays). */
  #flushAt(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, at - performance.now()));
  }

  #flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#writing || this.#queue.length === 0) return;
    // One statement per row id: a second write for the same row waits for the next statement.
    const batch: PendingWrite[] = [];
    const ids = new Set<string>();
    const rest: PendingWrite[] = [];
    for (const w of this.#queue) {
      if (batch.length < this.#maxRows && !ids.has(w.id)) {
        ids.add(w.id);
        batch.push(w);
      } else rest.push(w);
    }
    this.#queue = rest;
    this.#writing = true;
    void this.#write(batch).finally(() => {
      this.#writing = false;
      // What queued meanwhile goes when the first of it is due (at once if that has passed).
      if (this.#queue.length >= this.#maxRows) this.#flush();
      else if (this.#queue.length > 0) this.#flushAt(Math.min(...this.#queue.map((w) => w.due)));
    });
  }

  /**
   * One statement for the batch. If it fails, each row is tried again alone, so that a row the
   * database refuses (a value out of its column's range, say) fails only its own refresh: the
   * other rows' providers have already rotated their refresh tokens, and a write that failed for
   * a stranger's row would lose them.
   */
  async #write(batch: PendingWrite[]): Promise<void> {
    try {
      const written = await this.#execute(batch);
      for (const w of batch) w.settle(written.has(w.id));
      return;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.fail(error);
        return;
      }
    }
    for (const w of batch) {
      try {
        w.settle((await this.#execute([w])).has(w.id));
      } catch (error) {
        w.fail(error);
      }
    }
  }

  async #execute(batch: PendingWrite[]): Promise<Set<string>> {
    const pg = this.#kind === 'postgres';
    const v = pg ? pgRows(batch) : sqliteRows(batch);
    // A refresh token, ID token or scope list the provider did not send again keeps the old one.
    const mine = sql`c.lease_owner = v.owner`;
    // SQLite's RETURNING names the updated table's columns bare; PostgreSQL's \`id\` would be ambiguous with v's.
    const returned = pg ? sql`c.id` : sql`id`;
    const result = await sql<{
      id: string;
    }>`with ${v}
      update connections as c set
        access_token_sealed = v.access,
        refresh_token_sealed = coalesce(v.refresh, c.refresh_token_sealed),
        id_token_sealed = coalesce(v.id_token, c.id_token_sealed),
        token_type = v.token_type,
        access_token_expires_at = v.expires_at,
        scopes = coalesce(v.scopes, c.scopes),
        last_refreshed_at = v.refreshed_at,
        next_refresh_at = v.next_refresh_at,
        refresh_failures = 0,
        refresh_not_before = null,
        version = v.version + 1,
        updated_at = v.updated_at,
        lease_owner = case when ${mine} then null else c.lease_owner end,
        lease_until = case when ${mine} then null else c.lease_until end,
        lease_taken_from = case when ${mine} then null else c.lease_taken_from end
      from v
      where c.id = v.id and c.version = v.version
      returning ${returned}`.execute(this.#db);
    return new Set(result.rows.map((r) => r.id));
  }
}

/** The columns of `v`, in the order both forms below give them. */
const vColumns = sql.raw(
  'id, version, owner, access, refresh, id_token, token_type, expires_at, scopes, refreshed_at, next_refresh_at, updated_at',
);

/** One write's values, in the order of `vColumns`. */
function valuesOf(w: PendingWrite): unknown[] {
  const c = w.columns;
  return [
    w.id,
    w.version,
    w.owner,
    c.access_token_sealed,
    c.refresh_token_sealed ?? null,
    c.id_token_sealed ?? null,
    c.token_type,
    c.access_token_expires_at,
    c.scopes ?? null,
    c.last_refreshed_at,
    c.next_refresh_at,
    w.now,
  ];
}

/** The PostgreSQL type of each of `vColumns`. */
const vTypes = [
  'text',
  'integer',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'text',
  'bigint',
  'bigint',
  'bigint',
];

/**
 * PostgreSQL: one array parameter per column, `unnest`ed into rows. The statement's text is the
 * same for any number of rows and has 12 parameters, so the server parses and plans a small
 * statement each time instead of a VALUES list of 12 casts per row (which cost it more than the
 * update itself: about 190 µs to parse and 200 µs to bind and plan a statement of 2–3 rows).
 */
function pgRows(batch: readonly PendingWrite[]): RawBuilder<unknown> {
  const rows = batch.map(valuesOf);
  const arrays = vTypes.map((type, i) => sql`cast(${rows.map((r) => r[i])} as ${sql.raw(type)}[])`);
  return sql`v (${vColumns}) as (select * from unnest(${sql.join(arrays)}))`;
}

/** SQLite: a VALUES list (SQLite has no arrays; its statements are cached by text). */
function sqliteRows(batch: readonly PendingWrite[]): RawBuilder<unknown> {
  const rows = batch.map((w) => sql`(${sql.join(valuesOf(w))})`);
  return sql`v (${vColumns}) as (values ${sql.join(rows)})`;
}
