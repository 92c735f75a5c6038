import type { McpServerConfig, ProviderConfig } from '../../config/index.js';
import type { Store } from '../../store/database.js';

/**
 * The providers and MCP servers an administrator added at run time (console or admin API): they
 * live only in the database, so doctor reads them there to check them like the config file's.
 * Disabled entries are left out (nobody can use them). Only what the network checks read is
 * taken: endpoints, issuer, tenant, URL, client id; never a sealed secret.
 */
export async function runtimeEntries(
  store: Store,
): Promise<{ providers: ProviderConfig[]; mcpServers: McpServerConfig[] }> {
  const providers = await store.db
    .selectFrom('providers')
    .select(['id', 'type', 'settings'])
    .where('source', '=', 'admin')
    .where('enabled', '=', 1)
    .orderBy('id')
    .execute();
  const servers = await store.db
    .selectFrom('integrations')
    .select(['id', 'name', 'settings'])
    .where('source', '=', 'admin')
    .where('kind', '=', 'mcp')
    .where('enabled', '=', 1)
    .orderBy('id')
    .execute();
  return {
    providers: providers.map(
      (p) => ({ ...(JSON.parse(p.settings) as object), id: p.id, type: p.type }) as ProviderConfig,
    ),
    mcpServers: servers.map(
      (s) => ({ ...(JSON.parse(s.settings) as object), id: s.id, name: s.name }) as McpServerConfig,
    ),
  };
}
