import type { ConnectionRow } from '../store/types.js';

/** How long a read connection row serves the hot path before it is read again. */
export const defaultConnectionCacheMs = 1_000;
/** How long a row serves while the change feed reports every change (it is polled every 250 ms). */
export const defaultFollowedCacheMs = 5 * 60_000;

export interface ConnectionCacheOptions {
  /** Reads one row by id (whoever owns it); the cache checks the owner itself. */
  load: (connectionId: string) => Promise<ConnectionRow | undefined>;
  /** 0 turns the cache off: every lookup reads the database. */
  ttlMs?: number;
  maxEntries?: number;
  /** Monotonic milliseconds; real time even under a test clock, since staleness is real time. */
  now?: () => number;
  /**
   * The change feed that evicts rows other instances changed (`connection-changes.ts`). While its
   * polls keep succeeding, a row serves up to `maxAgeMs` instead of `ttlMs`.
   */
  feed?: { readonly lastSuccessfulPollStart: number };
  /** How long a row serves while the feed is healthy. */
  maxAgeMs?: number;
  /** The feed counts as healthy while its latest successful poll started less than this ago. */
  feedStaleMs?: number;
}

interface Entry {
  at: number;
  row: Promise<ConnectionRow | undefined>;
}

/**
 * Recently read connection rows for the hot path (HTTP proxy, in-process library): a busy
 * connection costs one database read per `ttlMs` instead of one per call, and concurrent misses
 * share one read. Only active rows with an access token are kept. This instance's own writes
 * (refresh, needs-reauth, Reconnect, Disconnect) evict the row at once; another instance's are
 * evicted by the change feed within one poll, or, while the feed's polls fail, seen within
 * `ttlMs` (a Disconnect there stops this instance's proxy within about a second either way; the
 * provider has revoked the grant already where it can). A miss is never remembered, so a
 * connection made on another instance is usable at once. Nothing here is needed by another
 * instance: it only saves reads.
 */
export class ConnectionCache {
  readonly #entries = new Map<string, Entry>();
  readonly #load: ConnectionCacheOptions['load'];
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #feed: ConnectionCacheOptions['feed'];
  readonly #maxAgeMs: number;
  readonly #feedStaleMs: number;

  constructor(options: ConnectionCacheOptions) {
    this.#load = options.load;
    this.#ttlMs = options.ttlMs ?? defaultConnectionCacheMs;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#feed = options.feed;
    this.#maxAgeMs = options.maxAgeMs ?? defaultFollowedCacheMs;
    this.#feedStaleMs = options.feedStaleMs ?? 1_000;
  }

  /** How long a row may serve now: long while the change feed is healthy, `ttlMs` otherwise. */
  #servesFor(now: number): number {
    const feed = this.#feed;
    return feed !== undefined && now - feed.lastSuccessfulPollStart < this.#feedStaleMs
      ? this.#maxAgeMs
      : this.#ttlMs;
  }

  /** The user's connection; another user's is indistinguishable from a missing one. */
  async findForUser(userId: string, connectionId: string): Promise<ConnectionRow | undefined> {
    const row = await this.#row(connectionId);
    return row?.user_id === userId ? row : undefined;
  }

  /** Forgets the row: the next lookup reads the database. Called after every write to it here. */
  invalidate(connectionId: string): void {
    this.#entries.delete(connectionId);
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Drops expired rows (and with them the access tokens opened from them), so an idle instance
   * does not keep them in memory. Entries are in load order, so this stops at the first fresh one.
   */
  sweep(): void {
    const now = this.#now();
    const servesFor = this.#servesFor(now);
    for (const [id, entry] of this.#entries) {
      if (now - entry.at < servesFor) break;
      this.#entries.delete(id);
    }
  }

  #row(connectionId: string): Promise<ConnectionRow | undefined> {
    if (this.#ttlMs <= 0) return this.#load(connectionId);
    const now = this.#now();
    const hit = this.#entries.get(connectionId);
    if (hit !== undefined && now - hit.at < this.#servesFor(now)) return hit.row;
    this.sweep();
    const entry: Entry = { at: now, row: this.#load(connectionId) };
    if (hit !== undefined)
      this.#entries.delete(connectionId); // re-inserted last: oldest first
    else if (this.#entries.size >= this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as string);
    }
    this.#entries.set(connectionId, entry);
    // Keep only what the hot path can use as it is; an invalidation meanwhile wins (the entry is gone).
    const drop = () => {
      if (this.#entries.get(connectionId) === entry) this.#entries.delete(connectionId);
    };
    entry.row.then((row) => {
      if (row === undefined || row.status !== 'active' || row.access_token_sealed === null) drop();
    }, drop);
    return entry.row;
  }
}
