import { type Config, ConfigError, type ConfigIssue } from '../config/index.js';
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
  await refuseAdminIds(config, catalog);
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
        ...(i.groups === undefined ? {} : { groups: [...i.groups] }),
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
        ...(m.groups === undefined ? {} : { groups: [...m.groups] }),
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

/**
 * The config file may not name an id an administrator created at run time: the service refuses to
 * start and names both, instead of overwriting the admin's entry.
 */
async function refuseAdminIds(config: Config, catalog: CatalogRepository): Promise<void> {
  const issues: ConfigIssue[] = [];
  const providers = new Set(
    await catalog.adminIdsAmong(
      'providers',
      config.providers.map((p) => p.id),
    ),
  );
  config.providers.forEach((p, i) => {
    if (providers.has(p.id)) issues.push({ path: `providers[${i}].id`, message: taken('provider', p.id) });
  });
  const sections = [
    ['integrations', config.integrations],
    ['mcpServers', config.mcpServers],
  ] as const;
  const integrations = new Set(
    await catalog.adminIdsAmong(
      'integrations',
      sections.flatMap(([, entries]) => entries.map((e) => e.id)),
    ),
  );
  for (const [section, entries] of sections) {
    entries.forEach((e, i) => {
      if (integrations.has(e.id))
        issues.push({ path: `${section}[${i}].id`, message: taken('integration', e.id) });
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

const taken = (what: string, id: string) =>
  `an administrator created the ${what} "${id}" at run time (see /api/v1/admin); rename this entry or delete theirs`;
