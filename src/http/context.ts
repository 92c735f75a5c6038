import type { Config } from '../config/index.js';
import type { AuthorizationFlow } from '../connections/authorization-flow.js';
import type { ConnectionCache } from '../connections/connection-cache.js';
import type { ConnectionChangeFeed } from '../connections/connection-changes.js';
import type { DisconnectDeps } from '../connections/disconnect.js';
import type { RevocationQueue } from '../connections/revocations.js';
import type { TokenService } from '../connections/token-service.js';
import type { Keyring, Sealer } from '../crypto/index.js';
import type { SessionHandOff } from '../identity/hand-off.js';
import type { SessionService } from '../identity/session-service.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import type { OutboundFetch } from '../oauth/outbound.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { ConnectionRepository } from '../store/repos/connections.js';
import type { McpDiscoveryRepository } from '../store/repos/mcp-discovery.js';
import type { Clock } from '../support/clock.js';
import type { Authenticator } from './auth.js';

/** Everything a route needs, built once per service instance and passed in. */
export interface AppContext {
  readonly config: Config;
  readonly store: Store;
  readonly keyring: Keyring;
  readonly sealer: Sealer;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly auth: Authenticator;
  readonly sessions: SessionService;
  /** The `/session?token=` hand-off: verification and once-only use of a `jti`. */
  readonly handOff: SessionHandOff;
  readonly audit: AuditLog;
  readonly catalog: CatalogRepository;
  readonly connections: ConnectionRepository;
  /** Recently read rows for the proxy and the library (this instance only; evicted on its own writes). */
  readonly connectionCache: ConnectionCache;
  /** Polled in the background; evicts rows other instances changed from `connectionCache`. */
  readonly connectionChanges: ConnectionChangeFeed;
  /** What the last discovery of each MCP server found (shown on the Integrations and admin pages). */
  readonly mcpDiscovery: McpDiscoveryRepository;
  readonly fetch: OutboundFetch;
  /** For token, revocation and userinfo calls: small answers read whole (cheaper than `fetch`). */
  readonly smallFetch: OutboundFetch;
  readonly providers: ProviderClients;
  readonly flow: AuthorizationFlow;
  readonly webhooks: Webhooks;
  readonly notifications: Notifications;
  readonly tokens: TokenService;
  readonly revocations: RevocationQueue;
  /** True when no config file was found and the service runs its bundled demo. */
  readonly demo: boolean;
}

/** What Disconnect needs, from the service's parts: a user's Disconnect, an admin's, a catalog delete. */
export function disconnectDepsOf(ctx: AppContext): DisconnectDeps {
  return {
    store: ctx.store,
    catalog: ctx.catalog,
    clients: ctx.providers,
    sealer: ctx.sealer,
    audit: ctx.audit,
    webhooks: ctx.webhooks,
    notifications: ctx.notifications,
    revocations: ctx.revocations,
    logger: ctx.logger,
    cache: ctx.connectionCache,
    clock: ctx.clock,
  };
}
