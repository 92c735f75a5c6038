import type { IntegrationConfig, McpServerConfig, ProviderConfig } from '../../config/index.js';
import type {
  ClientCredentials,
  IntegrationInput,
  IntegrationRecord,
  IntegrationSettings,
  ProviderInput,
  ProviderRecord,
} from '../../store/repos/catalog.js';
import type { McpDiscoveryStatus } from '../../store/repos/mcp-discovery.js';

/**
 * The admin API's entries: how a stored provider, integration or MCP server reads (never a
 * secret: only whether one is set and when it changed), how it converts back into the config
 * file's shape (so a PATCH is checked by the very schema the file is), and how a validated entry
 * becomes a catalog row.
 */

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A provider as admins read it: its settings, `hasClientSecret` and when it changed, never the value. */
export function providerView(p: ProviderRecord, credentials: ClientCredentials | undefined) {
  return {
    id: p.id,
    type: p.type,
    ...p.settings,
    hasClientSecret: credentials === undefined ? p.hasCredentials : credentials.clientSecret !== undefined,
    hasPrivateKey: credentials?.privateKey !== undefined,
    /** Kept for readers of the first admin API. */
    hasCredentials: p.hasCredentials,
    clientSecretChangedAt: iso(p.clientSecretChangedAt),
    source: p.source,
    enabled: p.enabled,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

/** An OAuth integration as admins read it; `enabled` is its own switch, `usable` also counts its provider's. */
export function integrationView(i: IntegrationRecord) {
  const s = i.settings;
  return {
    id: i.id,
    name: i.name,
    ...(s.description === undefined ? {} : { description: s.description }),
    provider: i.providerId,
    scopes: s.scopes,
    ...(s.api === undefined ? {} : { api: s.api }),
    ...(s.authorizationParams === undefined ? {} : { authorizationParams: s.authorizationParams }),
    ...(s.groups === undefined ? {} : { groups: s.groups }),
    source: i.source,
    enabled: i.ownEnabled,
    usable: i.enabled,
    createdAt: iso(i.createdAt),
    updatedAt: iso(i.updatedAt),
  };
}

/** An MCP server as admins read it, with what its last discovery found. */
export function mcpServerView(i: IntegrationRecord, discovery: McpDiscoveryStatus | undefined) {
  const s = i.settings;
  return {
    id: i.id,
    name: i.name,
    ...(s.description === undefined ? {} : { description: s.description }),
    url: s.url,
    scopes: s.scopes,
    ...(s.clientId === undefined ? {} : { clientId: s.clientId }),
    ...(s.clientAuthMethod === undefined ? {} : { clientAuthMethod: s.clientAuthMethod }),
    ...(s.pkce === undefined ? {} : { pkce: s.pkce }),
    ...(s.resource === undefined ? {} : { resource: s.resource }),
    ...(s.groups === undefined ? {} : { groups: s.groups }),
    hasClientSecret: i.hasCredentials,
    clientSecretChangedAt: iso(i.clientSecretChangedAt),
    source: i.source,
    enabled: i.ownEnabled,
    usable: i.enabled,
    discovery:
      discovery === undefined
        ? null
        : {
            ok: discovery.ok,
            checkedAt: iso(discovery.checkedAt),
            ...(discovery.ok ? discovery.summary : { problem: discovery.problem }),
          },
    createdAt: iso(i.createdAt),
    updatedAt: iso(i.updatedAt),
  };
}

/** A stored provider in the config file's shape, its secrets given by the caller (to re-validate). */
export function providerEntry(p: ProviderRecord, credentials: ClientCredentials): Record<string, unknown> {
  return { id: p.id, type: p.type, ...p.settings, ...credentials };
}

/** A stored integration in the config file's shape. */
export function integrationEntry(i: IntegrationRecord): Record<string, unknown> {
  const { scopes, description, api, authorizationParams, groups } = i.settings;
  return {
    id: i.id,
    name: i.name,
    provider: i.providerId,
    scopes,
    enabled: i.ownEnabled,
    ...defined({ description, api, authorizationParams, groups }),
  };
}

/** A stored MCP server in the config file's shape, its secret given by the caller. */
export function mcpServerEntry(
  i: IntegrationRecord,
  credentials: ClientCredentials,
): Record<string, unknown> {
  const { scopes, description, url, clientId, clientAuthMethod, pkce, resource, groups } = i.settings;
  return {
    id: i.id,
    name: i.name,
    url,
    scopes,
    enabled: i.ownEnabled,
    ...defined({ description, clientId, clientAuthMethod, pkce, resource, groups }),
    ...defined({ clientSecret: credentials.clientSecret }),
  };
}

/**
 * Applies a JSON Merge Patch: a member set to `null` is removed (`clientSecret: null` clears the
 * secret), an object is merged member by member, anything else replaces. @see RFC 7396 §2
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A validated provider entry as a catalog row: secrets apart, to be sealed. */
export function providerInput(p: ProviderConfig, enabled: boolean): Omit<ProviderInput, 'source'> {
  const { clientSecret, privateKey, id, type, ...settings } = p;
  const credentials: ClientCredentials = {
    ...defined({ clientSecret }),
    ...(privateKey === undefined ? {} : { privateKey: privateKey as ClientCredentials['privateKey'] }),
  };
  return { id, type, settings, credentials, enabled };
}

/** A validated integration entry as a catalog row. */
export function integrationInput(i: IntegrationConfig): Omit<IntegrationInput, 'source'> {
  const settings: IntegrationSettings = {
    scopes: [...i.scopes],
    ...defined({ description: i.description, groups: i.groups }),
    ...(i.api === undefined ? {} : { api: { baseUrl: i.api.baseUrl } }),
    ...(i.authorizationParams === undefined ? {} : { authorizationParams: { ...i.authorizationParams } }),
  };
  return {
    id: i.id,
    kind: 'oauth',
    name: i.name,
    providerId: i.provider,
    settings,
    credentials: null,
    enabled: i.enabled,
  };
}

/** A validated MCP server entry as a catalog row (an integration of kind `mcp`). */
export function mcpServerInput(m: McpServerConfig): Omit<IntegrationInput, 'source'> {
  return {
    id: m.id,
    kind: 'mcp',
    name: m.name,
    providerId: null,
    settings: {
      scopes: [...(m.scopes ?? [])],
      url: m.url,
      ...defined({
        description: m.description,
        clientId: m.clientId,
        clientAuthMethod: m.clientAuthMethod,
        pkce: m.pkce,
        resource: m.resource,
        groups: m.groups,
      }),
    },
    credentials: m.clientSecret === undefined ? null : { clientSecret: m.clientSecret },
    enabled: m.enabled,
  };
}

/** The members whose value is not undefined (exactOptionalPropertyTypes-friendly spreading). */
function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
