import type { Config } from '../config/index.js';
import type { CatalogRepository, ClientCredentials } from '../store/repos/catalog.js';

/**
 * Writes the providers, integrations and MCP servers of the config file into the catalog
 * (`source: config`), sealing their secrets, and disables config entries that were removed.
 * Idempotent, so every instance can run it at start; integrations go in batches, so a config
 * with 100,000 of them starts as well as one with three.
 */
export async function syncCatalogFromConfig(
  config: Config,
  catalog: CatalogRepository,
  now: number,
): Promise<void> {
  for (const p of config.providers) {
    const { clientSecret, privateKey, id, type, ...settings } = p;
    const credentials: ClientCredentials = {
      ...(clientSecret === undefined ? {} : { clientSecret }),
      ...(privateKey === undefined ? {} : { privateKey: privateKey as ClientCredentials['privateKey'] }),
    };
    await catalog.upsertProvider({ id, type, settings, credentials, source: 'config', enabled: true }, now);
  }
  await catalog.upsertIntegrations(
    config.integrations.map((i) => ({
      id: i.id,
      kind: 'oauth',
      name: i.name,
      providerId: i.provider,
      settings: {
        scopes: [...i.scopes],
        ...(i.description === undefined ? {} : { description: i.description }),
        ...(i.api === undefined ? {} : { api: { baseUrl: i.api.baseUrl } }),
        ...(i.authorizationParams === undefined ? {} : { authorizationParams: { ...i.authorizationParams } }),
      },
      credentials: null,
      source: 'config' as const,
      enabled: i.enabled,
    })),
    now,
  );
  await catalog.upsertIntegrations(
    config.mcpServers.map((m) => ({
      id: m.id,
      kind: 'mcp',
      name: m.name,
      providerId: null,
      settings: {
        scopes: [...(m.scopes ?? [])],
        url: m.url,
        ...(m.description === undefined ? {} : { description: m.description }),
        ...(m.clientId === undefined ? {} : { clientId: m.clientId }),
        ...(m.clientAuthMethod === undefined ? {} : { clientAuthMethod: m.clientAuthMethod }),
        ...(m.pkce === undefined ? {} : { pkce: m.pkce }),
        ...(m.resource === undefined ? {} : { resource: m.resource }),
      },
      credentials: m.clientSecret === undefined ? null : { clientSecret: m.clientSecret },
      source: 'config' as const,
      enabled: m.enabled,
    })),
    now,
  );
  await catalog.disableMissingFromConfig(
    config.providers.map((p) => p.id),
    [...config.integrations.map((i) => i.id), ...config.mcpServers.map((m) => m.id)],
    now,
  );
}
