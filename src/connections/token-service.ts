import { randomInt } from 'node:crypto';
import { inspect } from 'node:util';
import { DecryptionError, type Sealer } from '../crypto/index.js';
import { ProviderError } from '../oauth/errors.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { ConnectionRow } from '../store/types.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import type { ConnectionCache } from './connection-cache.js';
import {
  ConnectionNeedsReauthError,
  ConnectionNotFoundError,
  ProviderMisconfiguredError,
  ProviderUnavailableError,
} from './errors.js';
import {
  alertConfigError,
  markNeedsReauth,
  markUnreadable,
  type OutcomeDeps,
  reauthReason,
  recordTransientFailure,
  resolveConfigAlert,
  unreadableReason,
} from './refresh-outcomes.js';
import { defaultRefreshMarginMs, idleRefreshMs, nextRefreshAt, refreshDueAt } from './refresh-policy.js';

/** An access token ready to use. The value is private; logging or serialising it prints `[redacted]`. */
export class UsableToken {
  readonly #value: string;
  constructor(
    value: string,
    readonly tokenType: string,
    readonly expiresAt: number | null,
    readonly connectionId: string,
  ) {
    this.#value = value;
  }
  get value(): string {
    return this.#value;
  }
  /** The `Authorization` header value (always `Bearer`, the only type we send). */
  get authorization(): string {
    return `Bearer ${this.#value}`;
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[UsableToken redacted]';
  }
}

export interface TokenServiceDeps extends OutcomeDeps {
  catalog: CatalogRepository;
  clients: ProviderClients;
  sealer: Sealer;
  logger: Logger;
  metrics: Metrics;
  breakers: CircuitBreakers;
  /** Identifies this instance as a lease holder. */
  instanceId: string;
  /** How long a refresh lease lasts; must exceed the token request timeout. */
  leaseMs?: number;
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

type RefreshMode = 'on_demand' | 'scheduled';

/**
 * The one way to get a connection's access token (proxy, MCP gateway, in-process library).
 * Refreshes when due, exactly once per expiry: a single flight per connection inside the
 * instance, and across instances a lease taken by one conditional UPDATE in the database;
 * whoever waits re-reads and uses the winner's result. New tokens are written fenced by the
 * row's version (so a deleted connection is never resurrected and a stale writer never
 * overwrites a newer refresh), a rotated refresh token in the same statement as the access
 * token. Failures are classified once (oauth/errors.ts) and only `reauth_required` changes
 * the status. @see RFC 9700 §4.14 (refresh token rotation)
 */
export class TokenService {
  readonly #d: TokenServiceDeps;
  readonly #inFlight = new Map<string, Promise<UsableToken>>();
  /** Opened access tokens by the row object they came from (a cached row is opened once). */
  readonly #opened = new WeakMap<ConnectionRow, UsableToken>();
  readonly #leaseMs: number;
  readonly #marginMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(deps: TokenServiceDeps) {
    this.#d = deps;
    this.#leaseMs = deps.leaseMs ?? 30_000;
    this.#marginMs = deps.marginMs ?? defaultRefreshMarginMs;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** A valid access token for the connection, refreshing first when it is due. */
  async getAccessToken(connectionId: string, options: GetTokenOptions = {}): Promise<UsableToken> {
    return this.tokenFor(await this.#read(connectionId), options);
  }

  /** As `getAccessToken`, for a row the caller has just read (saves a query on the hot path). */
  async tokenFor(row: ConnectionRow, options: GetTokenOptions = {}): Promise<UsableToken> {
    const connectionId = row.id;
    this.#assertUsable(row);
    if (!options.force && this.#isFresh(row)) return this.#usable(row);
    // Join an on-demand flight only: a scheduled one gives up when another instance holds the lease.
    const key = options.force ? `${connectionId}:force` : connectionId;
    const running = this.#inFlight.get(key) ?? this.#inFlight.get(connectionId);
    if (running !== undefined) return running;
    const flight = this.#refresh(row, 'on_demand', options).finally(() => {
      this.#inFlight.delete(key);
      this.#d.cache?.invalidate(connectionId);
    });
    this.#inFlight.set(key, flight);
    return flight;
  }

  /**
   * A scheduled refresh (proactive, before expiry or to keep an idle grant alive): skips when
   * another instance holds the lease. Returns whether it refreshed.
   */
  async refreshScheduled(connectionId: string): Promise<boolean> {
    const row = await this.#d.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId)
      .executeTakeFirst();
    if (row === undefined || row.status !== 'active') return false;
    if (this.#inFlight.has(connectionId) || this.#inFlight.has(`${connectionId}:scheduled`)) return false;
    const flight = this.#refresh(row, 'scheduled', { force: true });
    this.#inFlight.set(`${connectionId}:scheduled`, flight);
    try {
      await flight;
      return true;
    } catch (error) {
      if (error instanceof LeaseBusy) return false;
      throw error;
    } finally {
      this.#inFlight.delete(`${connectionId}:scheduled`);
      this.#d.cache?.invalidate(connectionId);
    }
  }

  async #read(connectionId: string): Promise<ConnectionRow> {
    const row = await this.#d.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId)
      .executeTakeFirst();
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

  /**
   * Takes the refresh lease: `clean` when nobody held it, `takeover` when the holder's lease ran
   * out without a release (an instance died or hung mid-refresh), false when it is held.
   */
  async #tryAcquire(id: string): Promise<'clean' | 'takeover' | false> {
    const now = this.#d.clock.now();
    const take = (abandoned: boolean) =>
      this.#d.store.db
        .updateTable('connections')
        .set({ lease_owner: this.#d.instanceId, lease_until: now + this.#leaseMs })
        .where('id', '=', id)
        .where((eb) =>
          abandoned
            ? eb.and([eb('lease_owner', 'is not', null), eb('lease_until', '<', now)])
            : eb('lease_owner', 'is', null),
        )
        .executeTakeFirst();
    if (Number((await take(false)).numUpdatedRows) === 1) return 'clean';
    if (Number((await take(true)).numUpdatedRows) === 1) return 'takeover';
    return false;
  }

  async #release(id: string): Promise<void> {
    await this.#d.store.db
      .updateTable('connections')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', this.#d.instanceId)
      .execute();
  }

  /** Takes the lease (or waits for the holder's result), re-reads, refreshes if still needed, writes fenced. */
  async #refresh(seen: ConnectionRow, mode: RefreshMode, options: GetTokenOptions): Promise<UsableToken> {
    const deadline = this.#d.clock.now() + this.#leaseMs * 2;
    let acquired: 'clean' | 'takeover' | false;
    for (;;) {
      acquired = await this.#tryAcquire(seen.id);
      if (acquired !== false) break;
      if (mode === 'scheduled') throw new LeaseBusy();
      await this.#sleep(40 + randomInt(40));
      const row = await this.#read(seen.id);
      this.#assertUsable(row);
      if (row.version !== seen.version || (!options.force && this.#isFresh(row))) return this.#usable(row);
      if (this.#d.clock.now() > deadline) throw new ProviderUnavailableError(seen.id, this.#leaseMs);
    }
    try {
      const row = await this.#read(seen.id);
      this.#assertUsable(row);
      // Someone refreshed (or reconnected) between our read and our lease: use their result.
      if (row.version !== seen.version) return this.#usable(row);
      // A scheduled refresh only runs while the row is still due (another instance may have
      // refreshed it after this instance selected its batch).
      if (
        mode === 'scheduled' &&
        (row.next_refresh_at === null || row.next_refresh_at > this.#d.clock.now())
      ) {
        throw new LeaseBusy();
      }
      if (!options.force && this.#isFresh(row)) return this.#usable(row);
      if (options.rejectedToken !== undefined && row.access_token_sealed !== null) {
        const current = this.#usable(row);
        if (current.value !== options.rejectedToken) return current;
      }
      return await this.#refreshHeld(row, mode, options, acquired === 'takeover');
    } finally {
      await this.#release(seen.id);
    }
  }

  async #refreshHeld(
    row: ConnectionRow,
    mode: RefreshMode,
    options: GetTokenOptions,
    afterInterruptedRefresh: boolean,
  ): Promise<UsableToken> {
    const integration = await this.#d.catalog.getIntegration(row.integration_id);
    const providerId = integration?.providerId ?? null;
    if (integration === undefined || providerId === null || !integration.enabled) {
      throw new ProviderMisconfiguredError(row.id);
    }
    if (row.refresh_token_sealed === null) {
      // Nothing to refresh with. Usable until it expires; then the user must reconnect. An API's
      // 401 before then proves nothing (a permission or path problem): it reaches the caller as is.
      if (this.#notExpired(row)) {
        if (mode === 'scheduled')
          await this.#d.store.db
            .updateTable('connections')
            .set({ next_refresh_at: row.access_token_expires_at })
            .where('id', '=', row.id)
            .where('version', '=', row.version)
            .execute();
        return this.#usable(row);
      }
      await markNeedsReauth(this.#d, row, 'no_refresh_token');
      throw new ConnectionNeedsReauthError(row.id, row.integration_id, 'no_refresh_token');
    }
    if (!this.#d.breakers.allow(providerId)) {
      this.#d.metrics.tokenRequests.inc({
        provider: providerId,
        grant: 'refresh_token',
        outcome: 'circuit_open',
      });
      return this.#transient(row, this.#d.breakers.retryInMs(providerId));
    }
    // From here the breaker has let a call through: every path must tell it how the call went.
    let tokens: TokenSet;
    try {
      const refreshToken = this.#open(row, 'refresh_token_sealed');
      const client = await this.#d.clients.forProvider(providerId);
      tokens = await client.refresh(refreshToken, client.scopesFor(integration.settings.scopes));
    } catch (error) {
      if (!(error instanceof ProviderError)) {
        this.#d.breakers.success(providerId); // not the provider's fault: do not hold its breaker open
        throw error;
      }
      this.#d.metrics.tokenRequests.inc({
        provider: providerId,
        grant: 'refresh_token',
        outcome: error.kind,
      });
      this.#d.logger.warn(
        {
          connection: row.id,
          provider: providerId,
          kind: error.kind,
          providerError: error.providerError,
          status: error.status,
        },
        'refresh failed',
      );
      if (error.kind === 'reauth_required') {
        this.#d.breakers.success(providerId);
        // After an interrupted refresh the provider may already have rotated the token we hold
        // (its answer died with the other instance): say so, operators can tell it apart.
        const reason = `${reauthReason(error)}${afterInterruptedRefresh ? ':after_interrupted_refresh' : ''}`;
        await markNeedsReauth(this.#d, row, reason);
        throw new ConnectionNeedsReauthError(row.id, row.integration_id, reason);
      }
      if (error.kind === 'config_error' || error.kind === 'invalid_request') {
        // Our client or this integration's request is wrong: an admin problem, not an outage.
        this.#d.breakers.success(providerId);
        await alertConfigError(this.#d, row, providerId, error);
        if (this.#notExpired(row) && options.rejectedToken === undefined) return this.#usable(row);
        throw new ProviderMisconfiguredError(row.id);
      }
      this.#d.breakers.failure(providerId);
      return this.#transient(row, error.retryAfterMs);
    }
    this.#d.breakers.success(providerId);
    this.#d.metrics.tokenRequests.inc({ provider: providerId, grant: 'refresh_token', outcome: 'ok' });
    if (row.refresh_failures > 0) await resolveConfigAlert(this.#d, providerId);
    return this.#write(row, tokens, providerId);
  }

  /** A transient failure: status stays active; use the current token if the API still takes it. */
  async #transient(row: ConnectionRow, retryAfterMs: number | undefined): Promise<UsableToken> {
    await recordTransientFailure(this.#d, row, retryAfterMs);
    if (this.#notExpired(row)) return this.#usable(row);
    throw new ProviderUnavailableError(row.id, retryAfterMs);
  }

  /**
   * Persists the new token set in one UPDATE fenced by version: the rotated refresh token lands
   * with the access token or not at all. If the row was deleted meanwhile nothing is written.
   */
  async #write(row: ConnectionRow, tokens: TokenSet, providerId: string): Promise<UsableToken> {
    const now = this.#d.clock.now();
    const seal = (value: string, field: string) =>
      this.#d.sealer.seal(value, { table: 'connections', rowId: row.id, field });
    const idleMs = await this.#idleRefreshMs(providerId);
    const r = await this.#d.store.db
      .updateTable('connections')
      .set({
        access_token_sealed: seal(tokens.accessToken, 'access_token_sealed'),
        // A provider that returns no refresh token keeps the old one valid (TokenSet carries it over).
        ...(tokens.refreshToken === undefined
          ? {}
          : { refresh_token_sealed: seal(tokens.refreshToken, 'refresh_token_sealed') }),
        ...(tokens.idToken === undefined ? {} : { id_token_sealed: seal(tokens.idToken, 'id_token_sealed') }),
        token_type: tokens.tokenType,
        access_token_expires_at: tokens.expiresAt,
        ...(tokens.scopes === null ? {} : { scopes: JSON.stringify(tokens.scopes) }),
        last_refreshed_at: now,
        next_refresh_at: nextRefreshAt(tokens.expiresAt, now, { marginMs: this.#marginMs, idleMs }),
        refresh_failures: 0,
        version: row.version + 1,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('version', '=', row.version)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      // Deleted, or changed by a Reconnect meanwhile: never resurrect, never overwrite newer tokens.
      this.#d.logger.warn(
        { connection: row.id },
        'refreshed tokens discarded: the connection changed meanwhile',
      );
      const current = await this.#read(row.id);
      this.#assertUsable(current);
      return this.#usable(current);
    }
    return new UsableToken(tokens.accessToken, tokens.tokenType, tokens.expiresAt, row.id);
  }

  async #idleRefreshMs(providerId: string): Promise<number | null> {
    return idleRefreshMs(await this.#d.catalog.getProvider(providerId));
  }
}

/** Another instance holds the lease (scheduled refreshes skip instead of waiting). */
class LeaseBusy extends Error {
  readonly code = 'lease_busy';
}
