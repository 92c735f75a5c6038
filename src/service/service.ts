import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import {
  AuthorizationFlow,
  callbackPath,
  type ElicitationLedger,
} from '../connections/authorization-flow.js';
import { CircuitBreakers } from '../connections/circuit-breaker.js';
import { ConnectionCache } from '../connections/connection-cache.js';
import { ConnectionChangeFeed, pruneConnectionChanges } from '../connections/connection-changes.js';
import { runDueRefreshes } from '../connections/refresh-scheduler.js';
import { RevocationQueue } from '../connections/revocations.js';
import { TokenService } from '../connections/token-service.js';
import { configKeySource, type KeySource, loadKeyring, Sealer } from '../crypto/index.js';
import { createMcpGateway } from '../gateway/mcp/index.js';
import { registerProxyRoutes } from '../gateway/proxy.js';
import { buildApp, type RouteRegistrar } from '../http/app.js';
import { createAuthenticator } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { registerAdminRoutes } from '../http/routes/admin.js';
import { registerAdminCatalogRoutes } from '../http/routes/admin-catalog.js';
import { registerAdminCatalogPages } from '../http/routes/admin-catalog-pages.js';
import { registerAdminMcpPages } from '../http/routes/admin-mcp-pages.js';
import { registerAdminOperationRoutes } from '../http/routes/admin-operations.js';
import { registerAdminProviderPages } from '../http/routes/admin-provider-pages.js';
import { registerAdminTemplateRoutes } from '../http/routes/admin-templates.js';
import { registerAdminWebhookRoutes } from '../http/routes/admin-webhooks.js';
import { registerConnectRoutes } from '../http/routes/connect.js';
import { registerConnectionRoutes } from '../http/routes/connections.js';
import { registerMcpRoutes } from '../http/routes/mcp.js';
import { registerNotificationRoutes } from '../http/routes/notifications.js';
import { registerParkedFlowRoutes } from '../http/routes/parked-flow.js';
import { SessionHandOff } from '../identity/hand-off.js';
import { createJwtVerifier } from '../identity/jwt.js';
import { SessionService } from '../identity/session-service.js';
import { AuditLog } from '../notify/audit.js';
import { Notifications } from '../notify/notifications.js';
import { Webhooks } from '../notify/webhooks.js';
import { ProviderError } from '../oauth/errors.js';
import { McpDiscoveryError } from '../oauth/mcp/errors.js';
import { createOutbound, type OutboundFetch } from '../oauth/outbound.js';
import { createMcpClient } from '../oauth/providers/mcp.js';
import { type McpClientFactory, ProviderClients } from '../oauth/registry.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { openStore, type Store, waitForStore } from '../store/database.js';
import { migrateToLatest } from '../store/migrate.js';
import { CatalogRepository } from '../store/repos/catalog.js';
import { ConnectionRepository } from '../store/repos/connections.js';
import { McpDiscoveryRepository } from '../store/repos/mcp-discovery.js';
import { elicitationScopes, McpElicitationRepository } from '../store/repos/mcp-elicitations.js';
import { McpGatewaySessionRepository } from '../store/repos/mcp-gateway-sessions.js';
import { McpRegistrations } from '../store/repos/mcp-registrations.js';
import { PendingAuthorizationRepository } from '../store/repos/pending-authorizations.js';
import { SessionRepository } from '../store/repos/sessions.js';
import { UsedHandOffRepository } from '../store/repos/used-hand-offs.js';
import { pruneExpired } from '../store/retention.js';
import { type Clock, systemClock } from '../support/clock.js';
import { startBackground } from './background.js';
import { syncCatalogFromConfig } from './catalog-sync.js';

export interface ServiceOptions {
  logger?: Logger;
  clock?: Clock;
  /** Extra routes (later capabilities, tests). */
  routes?: RouteRegistrar[];
  demo?: boolean;
  /** Database start-up retries; the default waits about a minute in all. */
  databaseAttempts?: number;
  /** The fetch for outbound calls; defaults to the SSRF-guarded one built from `outbound`. */
  fetch?: OutboundFetch;
  /** Run webhook delivery, proactive refresh and housekeeping loops (default true). */
  background?: boolean;
  /** How often the proactive refresh scheduler looks for due connections (default 5 s). */
  schedulerIntervalMs?: number;
  /** Refresh lease length (default 30 s); its holder renews it while its token request runs. */
  leaseMs?: number;
  /** How long a token request may take in all, its answer included, before it is given up (default 5 min). */
  refreshTimeoutMs?: number;
  /** Per-provider circuit breaker: consecutive transient failures before it opens, and how often it then lets a probe through. */
  circuitBreaker?: { threshold?: number; openMs?: number };
  /**
   * How long the proxy and the library reuse a connection row they read (default 1 s; 0 reads
   * the database on every call). Bounds how late another instance's Disconnect is seen here.
   */
  connectionCacheMs?: number;
  /** Where the encryption keys come from (the key-custody seam); default: the config's `encryption.keys`. */
  keySource?: KeySource;
}

/** MCP gateway sessions unused for this long are forgotten (the client then initializes again). */
const mcpSessionIdleMs = 24 * 60 * 60 * 1000;

/** One running nunq-connect instance: its HTTP app, its context, and how to stop it. */
export interface Service {
  readonly app: FastifyInstance;
  readonly ctx: AppContext;
  listen(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds a service instance from a validated config: keyring (fails fast on a bad key), database
 * (waits with backoff, migrates), catalog sync, HTTP app. Nothing it keeps in memory is needed by
 * another instance.
 */
export async function createService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const logger = options.logger ?? createLogger();
  const clock = options.clock ?? systemClock;
  const keyring = await loadKeyring(options.keySource ?? configKeySource(config.encryption));
  const sealer = new Sealer(keyring);
  const store = openStore(config.database.url);
  try {
    await waitForStore(store, {
      attempts: options.databaseAttempts ?? 12,
      onRetry: (attempt, delayMs, error) =>
        logger.warn(
          {
            attempt,
            retryInMs: delayMs,
            database: store.label,
            reason: error instanceof Error ? error.message : String(error),
          },
          'database not reachable yet; retrying',
        ),
    });
    await migrateToLatest(store);
    const catalog = new CatalogRepository(store.db, sealer);
    await syncCatalogFromConfig(config, catalog, clock.now());
    const outbound = createOutbound(config.outbound);
    const fetch = options.fetch ?? outbound.fetch;
    const smallFetch = options.fetch ?? outbound.smallFetch;
    const ctx = buildContext(
      config,
      {
        store,
        keyring,
        sealer,
        logger,
        clock,
        catalog,
        fetch,
        smallFetch,
        demo: options.demo ?? false,
      },
      options,
    );
    await ctx.webhooks.syncFromConfig(config.webhooks);
    const mcpGateway = createMcpGateway({
      store,
      catalog: ctx.catalog,
      connectionCache: ctx.connectionCache,
      tokens: ctx.tokens,
      notifications: ctx.notifications,
      request: outbound.request,
      fetch,
      clock,
      logger,
      publicUrl: config.server.publicUrl,
    });
    const app = await buildApp(ctx, [
      registerConnectRoutes,
      registerParkedFlowRoutes,
      registerConnectionRoutes,
      registerNotificationRoutes,
      registerAdminRoutes,
      registerAdminOperationRoutes,
      registerAdminWebhookRoutes,
      registerAdminMcpPages,
      registerAdminProviderPages,
      registerAdminCatalogPages,
      registerAdminTemplateRoutes,
      registerAdminCatalogRoutes,
      (a) =>
        registerProxyRoutes(a, {
          connections: ctx.connectionCache,
          catalog: ctx.catalog,
          tokens: ctx.tokens,
          request: outbound.request,
          publicUrl: config.server.publicUrl,
        }),
      (a) => registerMcpRoutes(a, mcpGateway),
      ...(options.routes ?? []),
    ]);
    const pending = new PendingAuthorizationRepository(store.db);
    const background =
      options.background === false
        ? { stop: async () => {} }
        : startBackground(
            [
              { name: 'webhooks', everyMs: 1000, run: () => ctx.webhooks.deliverDue() },
              { name: 'connection-changes', everyMs: 250, run: () => ctx.connectionChanges.poll() },
              { name: 'connection-cache', everyMs: 5000, run: async () => ctx.connectionCache.sweep() },
              { name: 'revocations', everyMs: 5000, run: () => ctx.revocations.retryDue() },
              {
                name: 'refresh',
                everyMs: options.schedulerIntervalMs ?? 5000,
                run: (signal) => runDueRefreshes({ store, tokens: ctx.tokens, clock, logger }, { signal }),
              },
              {
                name: 'housekeeping',
                everyMs: 10 * 60 * 1000,
                run: async () => {
                  await pending.deleteExpired(clock.now());
                  await store.db
                    .deleteFrom('pending_confirmations')
                    .where('expires_at', '<', clock.now())
                    .execute();
                  await new SessionRepository(store.db).deleteExpired(clock.now());
                  await new UsedHandOffRepository(store.db).deleteExpired(clock.now());
                  await pruneConnectionChanges(store.db, clock.now());
                  await new McpGatewaySessionRepository(store.db).deleteIdle(clock.now() - mcpSessionIdleMs);
                  await new McpElicitationRepository(store.db).deleteExpired(clock.now());
                },
              },
              {
                name: 'retention',
                everyMs: 10 * 60 * 1000,
                run: async () => {
                  const pruned = await pruneExpired({ store, clock }, config.retention);
                  if (Object.values(pruned).some((n) => n > 0))
                    logger.info({ pruned }, 'pruned expired rows');
                },
              },
            ],
            logger,
          );
    if (options.background !== false) void discoverMcpServers(ctx);
    return {
      app,
      ctx,
      async listen() {
        return app.listen({ port: config.server.port, host: config.server.host });
      },
      async close() {
        await background.stop();
        mcpGateway.close();
        await app.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

function buildContext(
  config: Config,
  parts: Pick<
    AppContext,
    'store' | 'keyring' | 'sealer' | 'logger' | 'clock' | 'catalog' | 'demo' | 'fetch' | 'smallFetch'
  >,
  options: Pick<ServiceOptions, 'leaseMs' | 'refreshTimeoutMs' | 'circuitBreaker' | 'connectionCacheMs'>,
): AppContext {
  const connections = new ConnectionRepository(parts.store.db);
  const mcpDiscovery = new McpDiscoveryRepository(parts.store.db);
  // Evicts rows that other instances changed, so rows can serve for minutes (polled in the background).
  const connectionChanges = new ConnectionChangeFeed({
    db: parts.store.db,
    onChange: (id) => connectionCache.invalidate(id),
  });
  const connectionCache: ConnectionCache = new ConnectionCache({
    load: (id) => connections.findById(id),
    feed: connectionChanges,
    ...(options.connectionCacheMs === undefined ? {} : { ttlMs: options.connectionCacheMs }),
  });
  const sessions = new SessionService(
    new SessionRepository(parts.store.db),
    parts.clock,
    config.auth.sessionTtlSeconds,
    config.auth.admins,
  );
  const verifyJwt =
    config.auth.jwt === undefined
      ? undefined
      : createJwtVerifier(config.auth.jwt, undefined, config.auth.groupsClaim);
  const audit = new AuditLog(parts.store.db, parts.clock);
  const providers = new ProviderClients({
    catalog: parts.catalog,
    fetch: parts.fetch,
    smallFetch: parts.smallFetch,
    policy: config.outbound,
    clock: parts.clock,
    mcp: mcpClientFactory(config, parts, mcpDiscovery),
    mcpRejected: async (client) => {
      // Only a dynamic registration is dropped; a configured or CIMD client id matches none.
      await new McpRegistrations(parts.store.db, parts.sealer).dropRegistration(client.expectedIssuer, {
        redirectUri: `${config.server.publicUrl}${callbackPath}`,
        clientId: client.clientId,
      });
    },
  });
  const webhooks = new Webhooks({
    db: parts.store.db,
    sealer: parts.sealer,
    fetch: parts.fetch,
    clock: parts.clock,
    logger: parts.logger,
    // A delivery's lease must outlive its POST, or another instance sends it again.
    leaseMs: Math.max(60_000, config.outbound.timeoutMs * 3),
  });
  const notifications = new Notifications(parts.store.db, parts.clock);
  const metrics = createMetrics();
  const tokens = new TokenService({
    store: parts.store,
    audit,
    webhooks,
    notifications,
    clock: parts.clock,
    catalog: parts.catalog,
    clients: providers,
    sealer: parts.sealer,
    logger: parts.logger,
    metrics,
    breakers: new CircuitBreakers(parts.clock, options.circuitBreaker ?? {}),
    instanceId: randomUUID(),
    // A refresh lease must outlive the token request's timeout.
    leaseMs: options.leaseMs ?? Math.max(30_000, config.outbound.timeoutMs * 2),
    ...(options.refreshTimeoutMs === undefined ? {} : { refreshTimeoutMs: options.refreshTimeoutMs }),
    cache: connectionCache,
  });
  const revocations = new RevocationQueue({
    store: parts.store,
    sealer: parts.sealer,
    clients: providers,
    clock: parts.clock,
    logger: parts.logger,
    leaseMs: Math.max(60_000, config.outbound.timeoutMs * 3),
  });
  const flow = new AuthorizationFlow({
    store: parts.store,
    catalog: parts.catalog,
    pending: new PendingAuthorizationRepository(parts.store.db),
    clients: providers,
    sealer: parts.sealer,
    audit,
    webhooks,
    notifications,
    clock: parts.clock,
    publicUrl: config.server.publicUrl,
    cache: connectionCache,
    revocations,
    logger: parts.logger,
    elicitations: elicitationLedger(new McpElicitationRepository(parts.store.db), parts.clock),
    metrics,
  });
  return {
    ...parts,
    providers,
    webhooks,
    notifications,
    tokens,
    revocations,
    flow,
    config,
    metrics,
    sessions,
    handOff: new SessionHandOff({
      verifyJwt,
      used: new UsedHandOffRepository(parts.store.db),
      clock: parts.clock,
    }),
    auth: createAuthenticator({
      verifyJwt,
      sessions,
      admins: config.auth.admins,
      publicUrl: config.server.publicUrl,
    }),
    audit,
    connections,
    connectionCache,
    connectionChanges,
    mcpDiscovery,
  };
}

/** The gateway's elicitation links, as the Connect flow reads and completes them. */
function elicitationLedger(repo: McpElicitationRepository, clock: Clock): ElicitationLedger {
  return {
    async find(id, userId) {
      const row = await repo.findForUser(id, userId, clock.now());
      return row === undefined
        ? undefined
        : { integrationId: row.integration_id, scopes: elicitationScopes(row) };
    },
    async complete(id) {
      await repo.markComplete(id, clock.now());
    },
  };
}

/**
 * Discovers every enabled MCP server once at start, in the background, so the Integrations page
 * names a server's problem before anyone clicks Connect (the outcome is recorded by the factory).
 */
async function discoverMcpServers(ctx: AppContext): Promise<void> {
  try {
    const servers = (await ctx.catalog.listIntegrations()).filter((i) => i.kind === 'mcp');
    await Promise.allSettled(servers.map((server) => ctx.providers.forIntegration(server)));
  } catch (error) {
    ctx.logger.warn(
      { reason: error instanceof Error ? error.message : String(error) },
      'MCP discovery at start failed',
    );
  }
}

/**
 * Builds an MCP server's OAuth client (discovery, then client identity) and records what
 * discovery found, or its problem, for the Integrations page. A discovery failure becomes a
 * ProviderError of the same kind, so a server that is down is transient for refreshes (never
 * `needs_reauth`), with the MCP error kept as its cause for the readable message.
 */
function mcpClientFactory(
  config: Config,
  parts: Pick<AppContext, 'store' | 'sealer' | 'fetch' | 'smallFetch' | 'clock' | 'logger'>,
  status: McpDiscoveryRepository,
): McpClientFactory {
  const registrations = new McpRegistrations(parts.store.db, parts.sealer);
  return async (integration, credentials) => {
    const now = parts.clock.now();
    try {
      const built = await createMcpClient({
        integrationId: integration.id,
        settings: { ...integration.settings, url: integration.settings.url ?? '' },
        credentials,
        fetch: parts.fetch,
        smallFetch: parts.smallFetch,
        policy: config.outbound,
        clock: parts.clock,
        registrations,
        publicUrl: config.server.publicUrl,
        redirectUri: `${config.server.publicUrl}${callbackPath}`,
        ...(config.mcp.clientMetadataUrl === undefined
          ? {}
          : { clientMetadataUrl: config.mcp.clientMetadataUrl }),
      });
      const as = built.discovery.authorizationServer;
      await status.record({
        integrationId: integration.id,
        ok: true,
        summary: {
          resource: built.discovery.resource,
          issuer: as.issuer,
          registration: built.registration,
          scopes: built.client.scopesFor(integration.settings.scopes),
        },
        checkedAt: now,
      });
      return built.client;
    } catch (error) {
      if (!(error instanceof McpDiscoveryError)) throw error;
      parts.logger.warn(
        { integration: integration.id, problem: error.problem },
        'MCP server discovery failed',
      );
      await status.record({
        integrationId: integration.id,
        ok: false,
        problem: error.message,
        summary: {},
        checkedAt: now,
      });
      throw new ProviderError(error.kind, error.message, { cause: error });
    }
  };
}

export type { Store };
