/**
 * nunq-connect as a library: the same token service the HTTP proxy and MCP gateway use, for a
 * Node host that calls an integration's SDK directly. Tokens stay inside `UsableToken` objects,
 * which print `[redacted]` when logged or serialised.
 *
 * ```ts
 * import { createConnections } from 'nunq-connect';
 * const connections = await createConnections({ configFile: './nunq-connect.yaml' });
 * const token = await connections.getAccessToken('alice', connectionId);
 * await graphClient.get('/me', { headers: { authorization: token.authorization } });
 * await connections.close();
 * ```
 */
import { type Config, loadConfigFile } from './config/index.js';
import { ConnectionNotFoundError, IntegrationDisabledError } from './connections/errors.js';
import type { UsableToken } from './connections/token-service.js';
import type { KeySource } from './crypto/key-source.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createService, type Service } from './service/service.js';
import { catalogCacheMs } from './store/repos/catalog.js';
import { type ConnectionView, toConnectionView } from './store/repos/connections.js';

export type { Config } from './config/index.js';
export {
  ConnectionNeedsReauthError,
  ConnectionNotFoundError,
  IntegrationDisabledError,
  ProviderMisconfiguredError,
  ProviderUnavailableError,
} from './connections/errors.js';
export type { UsableToken } from './connections/token-service.js';
export { configKeySource, type KeySource } from './crypto/key-source.js';
export type { ConnectionView } from './store/repos/connections.js';

export interface ConnectionsOptions {
  /** A validated config, or a YAML file to load (with `${ENV}` substitution from `env`). */
  config?: Config;
  configFile?: string;
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Run the proactive refresh and webhook loops in this process too (default false). */
  background?: boolean;
  /** Where the encryption keys come from (docs/operations.md#key-custody); default: the config's `encryption.keys`. */
  keySource?: KeySource;
}

/** The in-process API. Every call is scoped to a user: another user's connection is "not found". */
export interface Connections {
  /** A valid access token for the user's connection, refreshed first when due (exactly once across instances). */
  getAccessToken(userId: string, connectionId: string): Promise<UsableToken>;
  /** After the API answered 401 to `rejected`: refresh (once) and return the new token. */
  refreshAfterUnauthorized(userId: string, connectionId: string, rejected: UsableToken): Promise<UsableToken>;
  listConnections(userId: string): Promise<ConnectionView[]>;
  close(): Promise<void>;
}

/** Opens the database and the token service described by the config; no HTTP server is started. */
export async function createConnections(options: ConnectionsOptions): Promise<Connections> {
  const config =
    options.config ??
    (options.configFile === undefined
      ? undefined
      : await loadConfigFile(options.configFile, options.env ?? process.env));
  if (config === undefined) throw new TypeError('createConnections needs config or configFile');
  const service: Service = await createService(config, {
    logger: options.logger ?? createLogger({ level: 'warn' }),
    background: options.background ?? false,
    ...(options.keySource === undefined ? {} : { keySource: options.keySource }),
  });
  const { connections, connectionCache, tokens, catalog } = service.ctx;
  const integrations = new Map<string, { at: number; enabled: Promise<boolean> }>();
  /** Whether the integration is enabled, re-read at most every `catalogCacheMs` (an admin's switch). */
  const enabled = (id: string) => {
    const now = Date.now();
    let hit = integrations.get(id);
    if (hit === undefined || now - hit.at >= catalogCacheMs) {
      if (integrations.size >= 1_000) integrations.clear();
      hit = { at: now, enabled: catalog.getIntegration(id).then((i) => i?.enabled !== false) };
      integrations.set(id, hit);
      hit.enabled.catch(() => integrations.delete(id));
    }
    return hit.enabled;
  };
  const owned = async (userId: string, connectionId: string) => {
    const row = await connectionCache.findForUser(userId, connectionId);
    if (row === undefined) throw new ConnectionNotFoundError(`connection ${connectionId} not found`);
    if (!(await enabled(row.integration_id))) throw new IntegrationDisabledError(row.integration_id);
    return row;
  };
  return {
    getAccessToken: async (userId, connectionId) => tokens.tokenFor(await owned(userId, connectionId)),
    refreshAfterUnauthorized: async (userId, connectionId, rejected) =>
      tokens.tokenFor(await owned(userId, connectionId), { force: true, rejectedToken: rejected.value }),
    listConnections: async (userId) => (await connections.listForUser(userId)).map(toConnectionView),
    close: () => service.close(),
  };
}
