import { ProviderError } from '../oauth/errors.js';
import type { OAuthClient } from '../oauth/oauth-client.js';
import { clientKeyOf, type ProviderClients } from '../oauth/registry.js';
import type { TokenSet } from '../oauth/token-set.js';
import {
  type CatalogRepository,
  catalogCacheMs,
  type IntegrationRecord,
  type ProviderRecord,
} from '../store/repos/catalog.js';
import type { ConnectionRepository } from '../store/repos/connections.js';
import type { RefreshWrites } from '../store/repos/refresh-writes.js';
import type { ConnectionRow } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import {
  ConnectionNeedsReauthError,
  ProviderMisconfiguredError,
  ProviderUnavailableError,
} from './errors.js';
import {
  alertConfigError,
  markNeedsReauth,
  reauthReason,
  refreshBackoffMs,
  resolveConfigAlert,
} from './refresh-outcomes.js';
import { idleRefreshMs, nextRefreshAt, refreshNotBefore } from './refresh-policy.js';
import type { GetTokenOptions, RefreshMode, TokenServiceDeps } from './token-service.js';
import { UsableToken } from './usable-token.js';

/**
 * The part of a refresh that runs while this instance holds the connection's lease: ask the
 * provider (through its circuit breaker, waiting a slow answer out), then record what it said —
 * new tokens in one fenced write that releases the lease, a transient failure with the
 * provider's pause, a configuration problem, or a lost grant (needs_reauth, once).
 */

/**
 * How long a scheduled refresh's token write waits for others to join its statement (ms). Nobody
 * waits for a scheduled refresh, and in a storm a longer window makes each statement carry more
 * rows: the PostgreSQL server spent about 330 µs of CPU per statement beside 100 µs per row
 * (docs/benchmarks.md, Refresh storm). With several instances each groups only its own writes:
 * at 20 ms, three instances wrote about four rows per statement, and the server spent 450–515 µs
 * per refresh; 60 ms brought that to 260–350 µs. On-demand refreshes keep the writes' short
 * default. The scheduler runs enough refreshes per token-request slot to cover the wait.
 */
export const scheduledWriteWindowMs = 60;

/** The lease of one refresh while this instance holds it. */
export interface HeldLease {
  /** Set once a write has released it (the fenced token write, or the failure record). */
  released: boolean;
  /** The holder before us let its lease run out: a refresh of theirs may have been interrupted. */
  takenOver: boolean;
  /**
   * Waits for a free token-request slot of the provider and returns its release: the scheduler
   * bounds requests in flight per provider this way, while database work runs beside them.
   */
  providerSlot?: (() => Promise<() => void>) | undefined;
}

/** What a refresh under the lease needs from the token service. */
export interface HeldRefreshContext {
  d: TokenServiceDeps;
  repo: ConnectionRepository;
  /** The fenced token writes, grouped into one statement per batch (store/repos/refresh-writes.ts). */
  writes: RefreshWrites;
  catalog: RecentCatalog;
  marginMs: number;
  refreshTimeoutMs: number;
  read(id: string): Promise<ConnectionRow>;
  assertUsable(row: ConnectionRow): void;
  usable(row: ConnectionRow): UsableToken;
  notExpired(row: ConnectionRow): boolean;
  open(row: ConnectionRow, field: 'access_token_sealed' | 'refresh_token_sealed'): string;
}

/** Integration and provider records and provider clients, re-read at most every `ttlMs` (a refresh storm needs the same few). */
export class RecentCatalog {
  readonly #records = new Map<string, { at: number; value: Promise<unknown> }>();
  constructor(
    private readonly deps: { catalog: CatalogRepository; clients: ProviderClients; clock: Clock },
    private readonly ttlMs = catalogCacheMs,
  ) {}

  integration(id: string): Promise<IntegrationRecord | undefined> {
    return this.#cached(`integration:${id}`, () => this.deps.catalog.getIntegration(id));
  }

  /** The OAuth client for a registry key (its factory re-reads the catalog on every call otherwise). */
  client(id: string): Promise<OAuthClient> {
    return this.#cached(`client:${id}`, () => this.deps.clients.forKey(id));
  }

  provider(id: string): Promise<ProviderRecord | undefined> {
    return this.#cached(`provider:${id}`, () => this.deps.catalog.getProvider(id));
  }

  #cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = this.deps.clock.now();
    const hit = this.#records.get(key);
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.value as Promise<T>;
    const value = load();
    this.#records.set(key, { at: now, value });
    value.catch(() => this.#records.delete(key));
    return value;
  }
}

/** Refreshes `row` with the provider while holding its lease, and records the outcome. */
export async function refreshHeld(
  ctx: HeldRefreshContext,
  row: ConnectionRow,
  mode: RefreshMode,
  options: GetTokenOptions,
  lease: HeldLease,
): Promise<UsableToken> {
  const integration = await ctx.catalog.integration(row.integration_id);
  const providerId = integration === undefined ? null : clientKeyOf(integration);
  if (integration === undefined || providerId === null || !integration.enabled) {
    throw new ProviderMisconfiguredError(row.id);
  }
  if (row.refresh_token_sealed === null) {
    // Nothing to refresh with. Usable until it expires; then the user must reconnect. An API's
    // 401 before then proves nothing (a permission or path problem): it reaches the caller as is.
    if (ctx.notExpired(row)) {
      if (mode === 'scheduled')
        await ctx.repo.rescheduleRefresh(row.id, row.version, row.access_token_expires_at);
      return ctx.usable(row);
    }
    await markNeedsReauth(ctx.d, row, 'no_refresh_token');
    throw new ConnectionNeedsReauthError(row.id, row.integration_id, 'no_refresh_token');
  }
  if (!ctx.d.breakers.allow(providerId)) {
    ctx.d.metrics.tokenRequests.inc({
      provider: providerId,
      grant: 'refresh_token',
      outcome: 'circuit_open',
    });
    return recordTransient(ctx, row, lease, { retryAfterMs: undefined, throttled: false }, providerId);
  }
  // From here the breaker has let a call through: every path must tell it how the call went.
  let tokens: TokenSet;
  let client: OAuthClient | undefined;
  try {
    const refreshToken = ctx.open(row, 'refresh_token_sealed');
    client = await ctx.catalog.client(providerId);
    if (row.issuer !== null && row.issuer !== client.expectedIssuer) {
      // The server now names another authorization server: our refresh token is never sent there.
      ctx.d.breakers.success(providerId);
      await markNeedsReauth(ctx.d, row, 'authorization_server_changed');
      throw new ConnectionNeedsReauthError(row.id, row.integration_id, 'authorization_server_changed');
    }
    const releaseSlot = await lease.providerSlot?.();
    try {
      tokens = await client.refresh(refreshToken, client.scopesFor(integration.settings.scopes), {
        bodyTimeoutMs: ctx.refreshTimeoutMs,
      });
    } finally {
      releaseSlot?.();
    }
  } catch (error) {
    if (!(error instanceof ProviderError)) {
      ctx.d.breakers.success(providerId); // not the provider's fault: do not hold its breaker open
      throw error;
    }
    ctx.d.metrics.tokenRequests.inc({
      provider: providerId,
      grant: 'refresh_token',
      outcome: error.kind,
    });
    ctx.d.logger.warn(
      {
        connection: row.id,
        provider: providerId,
        kind: error.kind,
        providerError: error.providerError,
        status: error.status,
        throttled: error.throttled,
      },
      'refresh failed',
    );
    if (error.kind === 'reauth_required') {
      ctx.d.breakers.success(providerId);
      // After an interrupted refresh the provider may already have rotated the token we hold
      // (its answer died with the other instance): say so, operators can tell it apart.
      const reason = `${reauthReason(error)}${lease.takenOver ? ':after_interrupted_refresh' : ''}`;
      await markNeedsReauth(ctx.d, row, reason);
      throw new ConnectionNeedsReauthError(row.id, row.integration_id, reason);
    }
    if (error.kind === 'config_error' || error.kind === 'invalid_request') {
      // Our client or this integration's request is wrong: an admin problem, not an outage.
      ctx.d.breakers.success(providerId);
      // An MCP server's client: discover again next time (and register anew if it was refused).
      if (client !== undefined) await ctx.d.clients.failed(integration, client, error);
      await alertConfigError(ctx.d, row, providerId, error);
      if (ctx.notExpired(row) && options.rejectedToken === undefined) return ctx.usable(row);
      throw new ProviderMisconfiguredError(row.id);
    }
    ctx.d.breakers.failure(providerId, error.retryAfterMs);
    return recordTransient(ctx, row, lease, error, providerId);
  }
  ctx.d.breakers.success(providerId);
  ctx.d.metrics.tokenRequests.inc({ provider: providerId, grant: 'refresh_token', outcome: 'ok' });
  if (row.refresh_failures > 0) await resolveConfigAlert(ctx.d, providerId);
  return writeRefreshed(ctx, row, tokens, providerId, lease, mode);
}

/**
 * A transient failure (or the breaker holding calls back): the status stays active; the failure,
 * the scheduler's backoff and the provider's pause (Retry-After, throttling) are recorded on the
 * row for every instance; the current token is used if the API still takes it.
 */
async function recordTransient(
  ctx: HeldRefreshContext,
  row: ConnectionRow,
  lease: HeldLease,
  failure: { retryAfterMs: number | undefined; throttled: boolean },
  providerId: string,
): Promise<UsableToken> {
  const now = ctx.d.clock.now();
  const notBefore = refreshNotBefore(failure, now);
  const failures = row.refresh_failures + 1;
  await ctx.repo.recordRefreshFailure(row.id, row.version, ctx.d.instanceId, {
    refreshFailures: failures,
    nextRefreshAt: now + refreshBackoffMs(failures, notBefore === null ? undefined : notBefore - now),
    notBefore,
  });
  lease.released = true;
  if (ctx.notExpired(row)) return ctx.usable(row);
  const retryAfterMs = notBefore === null ? ctx.d.breakers.retryInMs(providerId) : notBefore - now;
  throw new ProviderUnavailableError(row.id, retryAfterMs > 0 ? retryAfterMs : undefined);
}

/**
 * Persists the new token set in one UPDATE fenced by version, which also releases the lease:
 * the rotated refresh token lands with the access token or not at all. If the row was deleted
 * or changed meanwhile nothing is written.
 */
async function writeRefreshed(
  ctx: HeldRefreshContext,
  row: ConnectionRow,
  tokens: TokenSet,
  providerId: string,
  lease: HeldLease,
  mode: RefreshMode,
): Promise<UsableToken> {
  const now = ctx.d.clock.now();
  const seal = (value: string, field: string) =>
    ctx.d.sealer.seal(value, { table: 'connections', rowId: row.id, field });
  const idleMs = idleRefreshMs(await ctx.catalog.provider(providerId));
  const written = await ctx.writes.write(
    row.id,
    row.version,
    ctx.d.instanceId,
    {
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
      next_refresh_at: nextRefreshAt(tokens.expiresAt, now, { marginMs: ctx.marginMs, idleMs }),
    },
    now,
    mode === 'scheduled' ? scheduledWriteWindowMs : undefined,
  );
  if (!written) {
    // Deleted, or changed by a Reconnect meanwhile: never resurrect, never overwrite newer tokens.
    ctx.d.logger.warn({ connection: row.id }, 'refreshed tokens discarded: the connection changed meanwhile');
    const current = await ctx.read(row.id);
    ctx.assertUsable(current);
    return ctx.usable(current);
  }
  lease.released = true;
  return new UsableToken(tokens.accessToken, tokens.tokenType, tokens.expiresAt, row.id);
}
