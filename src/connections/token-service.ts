import { randomInt } from 'node:crypto';
import { DecryptionError, type Sealer } from '../crypto/index.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import { ConnectionRepository } from '../store/repos/connections.js';
import { RefreshWrites } from '../store/repos/refresh-writes.js';
import type { ConnectionRow } from '../store/types.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import type { ConnectionCache } from './connection-cache.js';
import { ConnectionNeedsReauthError, ConnectionNotFoundError, ProviderUnavailableError } from './errors.js';
import { type HeldLease, type HeldRefreshContext, RecentCatalog, refreshHeld } from './provider-refresh.js';
import { markUnreadable, type OutcomeDeps, unreadableReason } from './refresh-outcomes.js';
import { defaultRefreshMarginMs, refreshDueAt } from './refresh-policy.js';
import { UsableToken } from './usable-token.js';

export { UsableToken };

export interface TokenServiceDeps extends OutcomeDeps {
  catalog: CatalogRepository;
  clients: ProviderClients;
  sealer: Sealer;
  logger: Logger;
  metrics: Metrics;
  breakers: CircuitBreakers;
  /** Identifies this instance as a lease holder. */
  instanceId: string;
  /**
   * How long a refresh lease lasts without renewal (default 30 s). Its holder renews it every
   * third of that while its token request runs, so it only runs out when the holder is gone.
   */
  leaseMs?: number;
  /**
   * How long a token request may take in all, its answer's body included (default 5 min). A
   * provider that rotates refresh tokens has consumed the one presented when it starts answering:
   * the answer is waited out, never abandoned early and retried.
   */
  refreshTimeoutMs?: number;
  /** How long a caller waits for a refresh that another caller runs (default twice `leaseMs`). */
  leaseWaitMs?: number;
  marginMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The hot path's row cache: evicted whenever this service refreshes or fails a connection. */
  cache?: ConnectionCache;
}

export interface GetTokenOptions {
  /** Refresh even if the token looks valid (the API answered 401 to `rejectedToken`). */
  force?: boolean;
  /** The access token the API rejected: if the stored one differs, someone already refreshed. */
  rejectedToken?: string;
}

export type RefreshMode = 'on_demand' | 'scheduled';

/** A row this instance's scheduler claimed (lease taken in a batch), with its provider. */
export type ClaimedRow = ConnectionRow & { provider_id: string | null };

/** A caller that gives up waiting for another caller's refresh is told to come back after this long. */
const busyRetryMs = 2_000;
/** A caller whose token still works waits at most this long for a refresh, then uses its token. */
const stillValidWaitMs = 2_000;

/**
 * The one way to get a connection's access token (proxy, MCP gateway, in-process library).
 * Refreshes when due, exactly once per expiry: one refresh per connection in flight inside the
 * instance, which every caller joins (scheduled, forced and on demand alike), and across instances
 * a lease taken by one conditional UPDATE, renewed by its holder while the token request runs; a
 * caller that does not hold it waits for the holder's result (bounded) or uses a still-valid token.
 * New tokens are written fenced by the row's version, in the statement that releases the lease.
 * Failures are classified once (oauth/errors.ts); only `reauth_required` changes the status; a
 * provider's `Retry-After` or throttling answer pauses every refresh path of the connection.
 * @see RFC 9700 §4.14 (refresh token rotation)
 */
export class TokenService {
  readonly #d: TokenServiceDeps;
  readonly #repo: ConnectionRepository;
  /** The refresh in flight per connection id, whatever started it. */
  readonly #flights = new Map<string, Promise<UsableToken>>();
  /** Rows the scheduler claimed and has not started yet (id → when claimed). */
  readonly #claimed = new Map<string, number>();
  /** Opened access tokens by the row object they came from (a cached row is opened once). */
  readonly #opened = new WeakMap<ConnectionRow, UsableToken>();
  /** What a refresh under the lease needs from this service (provider-refresh.ts). */
  readonly #held: HeldRefreshContext;
  readonly #leaseMs: number;
  readonly #leaseWaitMs: number;
  readonly #refreshTimeoutMs: number;
  readonly #marginMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(deps: TokenServiceDeps) {
    this.#d = deps;
    this.#repo = new ConnectionRepository(deps.store.db);
    this.#leaseMs = deps.leaseMs ?? 30_000;
    this.#leaseWaitMs = deps.leaseWaitMs ?? this.#leaseMs * 2;
    this.#refreshTimeoutMs = deps.refreshTimeoutMs ?? 5 * 60_000;
    this.#marginMs = deps.marginMs ?? defaultRefreshMarginMs;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#held = {
      d: deps,
      repo: this.#repo,
      writes: new RefreshWrites(deps.store.db, deps.store.kind),
      catalog: new RecentCatalog(deps),
      marginMs: this.#marginMs,
      refreshTimeoutMs: this.#refreshTimeoutMs,
      read: (id) => this.#read(id),
      assertUsable: (row) => this.#assertUsable(row),
      usable: (row) => this.#usable(row),
      notExpired: (row) => this.#notExpired(row),
      open: (row, field) => this.#open(row, field),
    };
  }

  /** A valid access token for the connection, refreshing first when it is due. */
  async getAccessToken(connectionId: string, options: GetTokenOptions = {}): Promise<UsableToken> {
    return this.tokenFor(await this.#read(connectionId), options);
  }

  /** As `getAccessToken`, for a row the caller has just read (saves a query on the hot path). */
  async tokenFor(row: ConnectionRow, options: GetTokenOptions = {}): Promise<UsableToken> {
    this.#assertUsable(row);
    if (!options.force && this.#isFresh(row)) return this.#usable(row);
    // A pause the provider asked for, seen on the row we hold: no lease, no request.
    const paused = this.#duringPause(row, options, 'on_demand');
    if (paused !== undefined) return paused;
    let seen = row;
    for (;;) {
      const running = this.#flights.get(seen.id);
      const flight = running ?? this.#fly(seen.id, () => this.#refresh(seen, 'on_demand', options));
      let token: UsableToken;
      try {
        token = await this.#awaitBounded(flight, seen, options);
      } catch (error) {
        if (running !== undefined && error instanceof LeaseBusy) continue; // a scheduled run skipped
        throw error;
      }
      if (options.rejectedToken === undefined || token.value !== options.rejectedToken) return token;
      if (running === undefined) return token; // our own refresh found nothing newer to give
      // The refresh we joined ended on the very token the API refused: look again, refresh if need be.
      seen = await this.#read(seen.id);
      this.#assertUsable(seen);
      if (seen.access_token_sealed !== null && this.#usable(seen).value !== options.rejectedToken) {
        return this.#usable(seen);
      }
    }
  }

  /**
   * A scheduled refresh (proactive, before expiry or to keep an idle grant alive): skips when a
   * refresh of the connection is already running here or another instance holds the lease.
   * Returns whether it ran.
   */
  async refreshScheduled(connectionId: string): Promise<boolean> {
    if (this.#flights.has(connectionId)) return false;
    const row = await this.#repo.findById(connectionId);
    if (row === undefined || row.status !== 'active' || this.#flights.has(connectionId)) return false;
    return this.#skipped(this.#fly(connectionId, () => this.#refresh(row, 'scheduled', { force: true })));
  }

  /**
   * Claims up to `limit` due connections for the scheduler in one statement (their leases taken
   * at once); each must then go to `refreshClaimed`, which refreshes it or lets it go.
   */
  async claimDueRefreshes(limit: number): Promise<ClaimedRow[]> {
    const now = this.#d.clock.now();
    const rows = await this.#repo.claimDueRefreshes(
      this.#d.instanceId,
      now,
      this.#leaseMs,
      limit,
      this.#d.store.kind === 'postgres',
    );
    for (const row of rows) this.#claimed.set(row.id, now);
    return rows;
  }

  /**
   * Refreshes a row `claimDueRefreshes` returned, unless a caller here took it over meanwhile.
   * `providerSlot`, when given, is taken around the token request itself (see `HeldLease`).
   */
  async refreshClaimed(row: ClaimedRow, providerSlot?: () => Promise<() => void>): Promise<boolean> {
    const claimedAt = this.#claimed.get(row.id);
    // Taken over by an on-demand caller here, which refreshes (or refreshed) it.
    if (claimedAt === undefined || !this.#claimed.delete(row.id)) return false;
    if (this.#flights.has(row.id)) {
      await this.#repo.releaseRefreshLease(row.id, this.#d.instanceId);
      return false;
    }
    const now = this.#d.clock.now();
    // Queued for long behind other refreshes: make sure the lease is still ours before using it.
    if (
      now - claimedAt > this.#leaseMs / 2 &&
      !(await this.#repo.renewRefreshLease(row.id, this.#d.instanceId, now + this.#leaseMs))
    ) {
      return false;
    }
    return this.#skipped(
      this.#fly(row.id, () => this.#holding(row, row, 'scheduled', { force: true }, providerSlot)),
    );
  }

  async #skipped(flight: Promise<UsableToken>): Promise<boolean> {
    try {
      await flight;
      return true;
    } catch (error) {
      if (error instanceof LeaseBusy) return false;
      throw error;
    }
  }

  /** Registers the one refresh in flight for `id`; it leaves the map (and the row cache) when it settles. */
  #fly(id: string, run: () => Promise<UsableToken>): Promise<UsableToken> {
    const flight = run().finally(() => {
      this.#flights.delete(id);
      this.#d.cache?.invalidate(id);
    });
    this.#flights.set(id, flight);
    return flight;
  }

  /**
   * Waits for a refresh, but not forever: a caller whose token still works waits briefly and
   * then uses it; one whose token has expired waits `leaseWaitMs`, then gets 503 with Retry-After.
   * The refresh itself runs on (its answer is waited out) and is there for the next caller.
   */
  async #awaitBounded(
    flight: Promise<UsableToken>,
    row: ConnectionRow,
    options: GetTokenOptions,
  ): Promise<UsableToken> {
    const stillValid = options.rejectedToken === undefined && this.#notExpired(row);
    const waitMs = stillValid ? stillValidWaitMs : this.#leaseWaitMs;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    try {
      const token = await Promise.race([flight, gaveUp]);
      if (token !== undefined) return token;
    } finally {
      clearTimeout(timer);
    }
    if (stillValid) return this.#usable(row);
    throw new ProviderUnavailableError(row.id, busyRetryMs);
  }

  async #read(connectionId: string): Promise<ConnectionRow> {
    const row = await this.#repo.findById(connectionId);
    if (row === undefined) throw new ConnectionNotFoundError(`connection ${connectionId} not found`);
    return row;
  }

  #assertUsable(row: ConnectionRow): void {
    if (row.status === 'needs_reauth') {
      throw new ConnectionNeedsReauthError(row.id, row.integration_id, row.status_reason ?? 'needs_reauth');
    }
  }

  /** Fresh: there is an access token and its refresh is not yet due. */
  #isFresh(row: ConnectionRow): boolean {
    if (row.access_token_sealed === null) return false;
    const due = refreshDueAt(
      row.access_token_expires_at,
      row.last_refreshed_at ?? row.created_at,
      this.#marginMs,
    );
    return due === null || this.#d.clock.now() < due;
  }

  /** Still accepted by the API, even if a refresh is due (used when the provider is down). */
  #notExpired(row: ConnectionRow): boolean {
    if (row.access_token_sealed === null) return false;
    return row.access_token_expires_at === null || this.#d.clock.now() < row.access_token_expires_at - 5_000;
  }

  /**
   * The token the caller can use without a refresh of its own, now that `row` is current: after a
   * 401 only one other than the token the API refused (whatever the version says); otherwise the
   * result of someone else's refresh or Reconnect (the version moved), or a token not yet due.
   */
  #servedMeanwhile(
    row: ConnectionRow,
    seen: ConnectionRow,
    options: GetTokenOptions,
  ): UsableToken | undefined {
    if (options.rejectedToken !== undefined) {
      if (row.access_token_sealed === null) return undefined;
      const current = this.#usable(row);
      return current.value === options.rejectedToken ? undefined : current;
    }
    if (row.version !== seen.version || (!options.force && this.#isFresh(row))) return this.#usable(row);
    return undefined;
  }

  /**
   * While the provider's pause (`Retry-After`, throttling) lasts, nothing asks it for a token:
   * the current token if it still works, else 503 with the time left; a scheduled run skips.
   * Undefined when no pause is in force.
   */
  #duringPause(row: ConnectionRow, options: GetTokenOptions, mode: RefreshMode): UsableToken | undefined {
    const until = row.refresh_not_before;
    const now = this.#d.clock.now();
    if (until === null || until <= now) return undefined;
    if (mode === 'scheduled') throw new LeaseBusy();
    if (options.rejectedToken === undefined && this.#notExpired(row)) return this.#usable(row);
    throw new ProviderUnavailableError(row.id, until - now);
  }

  #usable(row: ConnectionRow): UsableToken {
    const known = this.#opened.get(row);
    if (known !== undefined) return known;
    const value = this.#open(row, 'access_token_sealed');
    const token = new UsableToken(value, row.token_type ?? 'Bearer', row.access_token_expires_at, row.id);
    this.#opened.set(row, token);
    return token;
  }

  /**
   * Opens one sealed token of the row. A value that does not open (tampered, moved, key gone)
   * is this connection's problem only: it needs reconnecting, reported once (refresh-outcomes).
   */
  #open(row: ConnectionRow, field: 'access_token_sealed' | 'refresh_token_sealed'): string {
    try {
      return this.#d.sealer.open(row[field]!, { table: 'connections', rowId: row.id, field });
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
      void markUnreadable(this.#d, row, field, error);
      throw new ConnectionNeedsReauthError(row.id, row.integration_id, unreadableReason);
    }
  }

  /** Takes the lease (or waits for its holder's result), then refreshes while holding it. */
  async #refresh(seen: ConnectionRow, mode: RefreshMode, options: GetTokenOptions): Promise<UsableToken> {
    const me = this.#d.instanceId;
    const deadline = this.#d.clock.now() + this.#leaseWaitMs;
    for (;;) {
      const claim = await this.#repo.tryAcquireRefreshLease(seen.id, me, this.#d.clock.now(), this.#leaseMs);
      if (claim !== undefined) return this.#holding(claim, seen, mode, options);
      if (mode === 'scheduled') throw new LeaseBusy();
      await this.#sleep(40 + randomInt(40));
      const row = await this.#read(seen.id);
      this.#assertUsable(row);
      const served = this.#servedMeanwhile(row, seen, options);
      if (served !== undefined) return served;
      const paused = this.#duringPause(row, options, mode);
      if (paused !== undefined) return paused;
      // The holder (alive: it renews its lease) is on it; a token that still works is used meanwhile.
      if (options.rejectedToken === undefined && this.#notExpired(row)) return this.#usable(row);
      // Claimed by this instance's scheduler, which has not started on it: take it from there.
      if (row.lease_owner === me && this.#claimed.delete(row.id)) {
        return this.#holding({ ...row, lease_taken_from: null }, seen, mode, options);
      }
      if (this.#d.clock.now() > deadline) throw new ProviderUnavailableError(seen.id, busyRetryMs);
    }
  }

  /**
   * Holding the lease (and renewing it while this runs): checks the row as the lease returned it,
   * refreshes if still needed, and lets the lease go when done.
   */
  async #holding(
    row: ConnectionRow,
    seen: ConnectionRow,
    mode: RefreshMode,
    options: GetTokenOptions,
    providerSlot?: () => Promise<() => void>,
  ): Promise<UsableToken> {
    const lease: HeldLease = {
      released: false,
      takenOver: row.lease_taken_from !== null && row.lease_taken_from !== this.#d.instanceId,
      providerSlot,
    };
    const heartbeat = this.#keepLease(row.id);
    try {
      this.#assertUsable(row);
      // Someone refreshed (or reconnected) between our read and our lease: use their result.
      const served = this.#servedMeanwhile(row, seen, options);
      if (served !== undefined) return served;
      // A scheduled refresh only runs while the row is still due (another instance may have
      // refreshed it after this instance selected its batch).
      if (
        mode === 'scheduled' &&
        (row.next_refresh_at === null || row.next_refresh_at > this.#d.clock.now())
      ) {
        throw new LeaseBusy();
      }
      const paused = this.#duringPause(row, options, mode);
      if (paused !== undefined) return paused;
      return await refreshHeld(this.#held, row, mode, options, lease);
    } finally {
      heartbeat.stop();
      if (!lease.released) await this.#repo.releaseRefreshLease(row.id, this.#d.instanceId);
    }
  }

  /**
   * Renews the lease every third of its length until stopped, so that it runs out only when this
   * instance is gone, never while its token request is alive.
   */
  #keepLease(id: string): { stop(): void } {
    let lost = false;
    const renew = () => {
      const until = this.#d.clock.now() + this.#leaseMs;
      this.#repo.renewRefreshLease(id, this.#d.instanceId, until).then(
        (held) => {
          if (!held && !lost) {
            lost = true;
            this.#d.logger.warn({ connection: id }, 'refresh lease lost while its token request ran');
          }
        },
        (error: unknown) =>
          this.#d.logger.warn(
            { connection: id, reason: (error as { code?: string }).code },
            'refresh lease renewal failed',
          ),
      );
    };
    const timer = setInterval(renew, Math.max(20, Math.floor(this.#leaseMs / 3)));
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}

/** Another instance holds the lease, or the row is no longer due (scheduled refreshes skip instead of waiting). */
class LeaseBusy extends Error {
  readonly code = 'lease_busy';
}
