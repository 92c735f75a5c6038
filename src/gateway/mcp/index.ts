/** The MCP gateway, assembled: what the routes of `/mcp` and `/mcp/:integrationId` need. */
import type { ConnectionCache } from '../../connections/connection-cache.js';
import type { TokenService } from '../../connections/token-service.js';
import type { Notifications } from '../../notify/notifications.js';
import type { OutboundFetch, OutboundRequest } from '../../oauth/outbound.js';
import type { Logger } from '../../observability/logger.js';
import type { Store } from '../../store/database.js';
import type { CatalogRepository } from '../../store/repos/catalog.js';
import { ConnectionRepository } from '../../store/repos/connections.js';
import { McpElicitationRepository } from '../../store/repos/mcp-elicitations.js';
import { McpGatewaySessionRepository } from '../../store/repos/mcp-gateway-sessions.js';
import type { Clock } from '../../support/clock.js';
import { AggregateGateway } from './aggregate.js';
import { ConnectionLookup } from './connection-lookup.js';
import { IntegrationGateway } from './integration-gateway.js';
import { McpIntegrations } from './integrations.js';
import { GatewaySessions } from './sessions.js';
import { StreamWatcher } from './streams.js';
import { UpstreamClients } from './upstream-clients.js';
import { UserActions } from './user-action.js';

export interface McpGatewayDeps {
  store: Pick<Store, 'db'>;
  catalog: CatalogRepository;
  connectionCache: Pick<ConnectionCache, 'findForUser'>;
  tokens: TokenService;
  notifications: Pick<Notifications, 'latestEventId' | 'eventsAfter'>;
  request: OutboundRequest;
  fetch: OutboundFetch;
  clock: Clock;
  logger: Logger;
  publicUrl: string;
}

export interface McpGateway {
  integrations: McpIntegrations;
  perIntegration: IntegrationGateway;
  aggregate: AggregateGateway;
  clients: UpstreamClients;
  sessions: GatewaySessions;
  connections: ConnectionLookup;
  actions: UserActions;
  watcher: StreamWatcher;
  deps: McpGatewayDeps;
  /** Stops the watcher's timers and closes the upstream clients. */
  close(): void;
}

export function createMcpGateway(d: McpGatewayDeps): McpGateway {
  const elicitations = new McpElicitationRepository(d.store.db);
  const sessions = new GatewaySessions(new McpGatewaySessionRepository(d.store.db), d.clock);
  const connections = new ConnectionLookup(d.connectionCache, new ConnectionRepository(d.store.db));
  const actions = new UserActions({ elicitations, clock: d.clock, publicUrl: d.publicUrl });
  const watcher = new StreamWatcher({
    elicitations,
    events: d.notifications,
    clock: d.clock,
    onError: (error) =>
      d.logger.warn(
        { reason: (error as { code?: string }).code ?? String(error) },
        'mcp gateway: stream poll failed',
      ),
  });
  const perIntegration = new IntegrationGateway({
    request: d.request,
    tokens: d.tokens,
    sessions,
    connections,
    actions,
    watcher,
    logger: d.logger,
  });
  const integrations = new McpIntegrations(d.catalog);
  const clients = new UpstreamClients({ fetch: d.fetch, tokens: d.tokens, connections });
  const aggregate = new AggregateGateway({
    request: d.request,
    tokens: d.tokens,
    sessions,
    connections,
    integrations,
    clients,
    actions,
    watcher,
    logger: d.logger,
  });
  return {
    integrations,
    perIntegration,
    aggregate,
    clients,
    sessions,
    connections,
    actions,
    watcher,
    deps: d,
    close: () => {
      watcher.stop();
      clients.closeAll();
    },
  };
}
