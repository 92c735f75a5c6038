import type { Kysely } from 'kysely';
import type { Database } from '../store/types.js';

export interface ConnectionChangeFeedOptions {
  db: Kysely<Database>;
  /** Called once per change seen: the cache evicts that connection. */
  onChange: (connectionId: string) => void;
  /**
   * How long a missing sequence number is looked for. On PostgreSQL a transaction can commit
   * after one that took a later number; its change then appears late, in the gap it left.
   */
  gapWindowMs?: number;
  /** Changes read per poll at most; the rest comes with the next poll. */
  batchSize?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
}

/** Gaps tracked at most; beyond this (a huge burst of rolled-back writes) the oldest are forgotten. */
const maxGaps = 10_000;

/**
 * Follows `connection_changes`, which database triggers append to whenever a connection is
 * deleted or changes in a way the hot path uses (migration 0009), and reports each change
 * once. This lets every instance keep connection rows cached for minutes and still see another
 * instance's Disconnect, Reconnect or refresh within one poll. `healthySince()` says since when
 * polls have kept succeeding; a cache must not rely on the feed when they stop.
 */
export class ConnectionChangeFeed {
  readonly #db: Kysely<Database>;
  readonly #onChange: (connectionId: string) => void;
  readonly #gapWindowMs: number;
  readonly #batchSize: number;
  readonly #now: () => number;
  /** Highest sequence number read; undefined before the first poll. */
  #high: number | undefined;
  /** Missing sequence numbers below `#high`, with when they were first missed. */
  readonly #gaps = new Map<number, number>();
  #lastOkStart = Number.NEGATIVE_INFINITY;

  constructor(options: ConnectionChangeFeedOptions) {
    this.#db = options.db;
    this.#onChange = options.onChange;
    this.#gapWindowMs = options.gapWindowMs ?? 10_000;
    this.#batchSize = options.batchSize ?? 5_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** When the latest successful poll started (monotonic ms); -Infinity before the first. */
  get lastSuccessfulPollStart(): number {
    return this.#lastOkStart;
  }

  /** Reads what changed since the last poll and reports it. Returns how many changes were new. */
  async poll(): Promise<number> {
    const started = this.#now();
    if (this.#high === undefined) {
      // Nothing is cached before the first poll, so earlier changes do not matter.
      const row = await this.#db
        .selectFrom('connection_changes')
        .select((eb) => eb.fn.max('seq').as('high'))
        .executeTakeFirst();
      this.#high = Number(row?.high ?? 0);
      this.#lastOkStart = started;
      return 0;
    }
    let seen = 0;
    const rows = await this.#db
      .selectFrom('connection_changes')
      .select(['seq', 'connection_id'])
      .where('seq', '>', this.#high)
      .orderBy('seq')
      .limit(this.#batchSize)
      .execute();
    for (const row of rows) {
      const seq = Number(row.seq);
      for (let missing = this.#high + 1; missing < seq; missing++) this.#addGap(missing, started);
      this.#high = seq;
      this.#onChange(row.connection_id);
      seen++;
    }
    seen += await this.#fillGaps(started);
    this.#lastOkStart = started;
    return seen;
  }

  #addGap(seq: number, at: number): void {
    if (this.#gaps.size >= maxGaps) this.#gaps.delete(this.#gaps.keys().next().value as number);
    this.#gaps.set(seq, at);
  }

  /** Looks for changes that were committed after later ones, and forgets gaps older than the window. */
  async #fillGaps(now: number): Promise<number> {
    for (const [seq, at] of this.#gaps) {
      if (now - at < this.#gapWindowMs) break;
      this.#gaps.delete(seq);
    }
    if (this.#gaps.size === 0) return 0;
    const late = await this.#db
      .selectFrom('connection_changes')
      .select(['seq', 'connection_id'])
      .where('seq', 'in', [...this.#gaps.keys()].slice(0, 1_000))
      .execute();
    for (const row of late) {
      this.#gaps.delete(Number(row.seq));
      this.#onChange(row.connection_id);
    }
    return late.length;
  }
}

/**
 * Deletes changes older than `keepMs` (every instance has long polled past them). The newest row
 * is always kept: SQLite hands out max(seq) + 1, so an emptied table would reuse numbers that
 * instances have already read past.
 */
export async function pruneConnectionChanges(db: Kysely<Database>, now: number, keepMs = 60 * 60_000) {
  const newest = db.selectFrom('connection_changes').select((eb) => eb.fn.max('seq').as('newest'));
  const result = await db
    .deleteFrom('connection_changes')
    .where('changed_at', '<', now - keepMs)
    .where('seq', '<', newest)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
