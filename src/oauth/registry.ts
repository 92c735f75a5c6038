import type { CatalogRepository, ClientCredentials, IntegrationRecord } from '../store/repos/catalog.js';
import type { Clock } from '../support/clock.js';
import { ProviderError } from './errors.js';
import { isRegistrationRejected } from './mcp/client-identity.js';
import type { OAuthClient } from './oauth-client.js';
import type { OutboundFetch, OutboundPolicy } from './outbound.js';
import { createEntraClient } from './providers/entra.js';
import { createOAuth2Client } from './providers/oauth2.js';
import { createOidcClient } from './providers/oidc.js';
import type { ProviderFactory } from './providers/types.js';

/** Provider types and their factories: the one table to extend for a new type. */
const factories: Record<string, ProviderFactory> = {
  oidc: createOidcClient,
  oauth2: createOAuth2Client,
  entra: createEntraClient,
};

/** Builds the OAuth client of one MCP server integration (discovery, then client identity). */
export type McpClientFactory = (
  integration: IntegrationRecord,
  credentials: ClientCredentials,
) => Promise<OAuthClient>;

/** Forgets what an MCP server's authorization server no longer accepts (a dropped registration). */
export type McpClientRejected = (client: OAuthClient) => Promise<void>;

const mcpKeyPrefix = 'mcp:';

/**
 * The registry key of an integration's OAuth client: its provider's id, or `mcp:<id>` for an MCP
 * server, whose client is its own (provider ids are slugs, so the two never collide); an MCP
 * server row that names a provider uses that provider's client. Breakers, metrics and the
 * revocation queue use the same key.
 */
export function clientKeyOf(
  integration: Pick<IntegrationRecord, 'id' | 'kind' | 'providerId'>,
): string | null {
  if (integration.providerId !== null) return integration.providerId;
  return integration.kind === 'mcp' ? `${mcpKeyPrefix}${integration.id}` : null;
}

/**
 * Gives the OAuth client of a provider or an MCP server, built on first use and cached for
 * `ttlMs` (discovery metadata changes rarely; a provider edited by an admin is rebuilt because the cache key
 * includes its `updatedAt`). A cache miss costs one discovery request; nothing here is shared
 * state another instance needs.
 */
export class ProviderClients {
  readonly #cache = new Map<string, { at: number; client: Promise<OAuthClient> }>();
  readonly #deps: {
    catalog: CatalogRepository;
    fetch: OutboundFetch;
    smallFetch?: OutboundFetch;
    policy: OutboundPolicy;
    clock: Clock;
    ttlMs: number;
    mcp?: McpClientFactory;
    mcpRejected?: McpClientRejected;
  };

  constructor(deps: {
    catalog: CatalogRepository;
    fetch: OutboundFetch;
    /** The clients' own token requests (see `createOutbound`); default `fetch`. */
    smallFetch?: OutboundFetch;
    policy: OutboundPolicy;
    clock: Clock;
    ttlMs?: number;
    /** Absent: MCP servers cannot be connected (a config_error names why). */
    mcp?: McpClientFactory;
    /** Drops a registration its authorization server refused (`invalid_client`). */
    mcpRejected?: McpClientRejected;
  }) {
    this.#deps = { ...deps, ttlMs: deps.ttlMs ?? 60 * 60 * 1000 };
  }

  /**
   * The client for a registry key ({@link clientKeyOf}): a provider id or `mcp:<integration id>`.
   * `evenDisabled`: also for a disabled provider or MCP server, to revoke its grants (an admin
   * deleting it removes its connections, revoked at the provider first).
   */
  async forKey(key: string, options: { evenDisabled?: boolean } = {}): Promise<OAuthClient> {
    if (!key.startsWith(mcpKeyPrefix)) return this.forProvider(key, options);
    const id = key.slice(mcpKeyPrefix.length);
    const integration = await this.#deps.catalog.getIntegration(id);
    const usable =
      integration?.enabled === true || (options.evenDisabled === true && integration !== undefined);
    if (integration === undefined || integration.kind !== 'mcp' || !usable) {
      throw new ProviderError('config_error', `MCP server ${id} is not configured or disabled`);
    }
    return this.forIntegration(integration);
  }

  /** The client an integration's flows and refreshes use. */
  async forIntegration(integration: IntegrationRecord): Promise<OAuthClient> {
    if (integration.providerId !== null) return this.forProvider(integration.providerId);
    if (integration.kind !== 'mcp') {
      throw new ProviderError('config_error', `integration ${integration.id} has no provider`);
    }
    const factory = this.#deps.mcp;
    if (factory === undefined) throw new ProviderError('config_error', 'MCP servers are not enabled');
    const { catalog } = this.#deps;
    return this.#cached(`${mcpKeyPrefix}${integration.id}`, integration.updatedAt, async () =>
      factory(integration, await catalog.integrationCredentials(integration.id)),
    );
  }

  /**
   * A token request of an MCP server's client failed for a reason of ours (`config_error`): the
   * client is forgotten, so the next use discovers again (the metadata may have moved); when the
   * authorization server refused the client itself (`invalid_client`, a 401), its dynamic
   * registration is dropped too and redone on the next use, once per refusal (each needs a new
   * attempt: never a loop).
   */
  async failed(integration: IntegrationRecord, client: OAuthClient, error: unknown): Promise<void> {
    if (integration.kind !== 'mcp' || integration.providerId !== null) return;
    this.forget(`${mcpKeyPrefix}${integration.id}`);
    if (isRegistrationRejected(error)) await this.#deps.mcpRejected?.(client);
  }

  /** Forgets an MCP server's client so the next use discovers again (its metadata changed). */
  forget(key: string): void {
    for (const k of this.#cache.keys()) if (k.startsWith(`${key}@`)) this.#cache.delete(k);
  }

  async forProvider(providerId: string, options: { evenDisabled?: boolean } = {}): Promise<OAuthClient> {
    const { catalog, clock } = this.#deps;
    const provider = await catalog.getProvider(providerId);
    if (provider === undefined || (!provider.enabled && options.evenDisabled !== true)) {
      throw new ProviderError('config_error', `provider ${providerId} is not configured or disabled`);
    }
    const factory = factories[provider.type];
    if (factory === undefined)
      throw new ProviderError('config_error', `provider type ${provider.type} is unknown`);
    return this.#cached(provider.id, provider.updatedAt, async () =>
      factory({
        provider,
        credentials: await catalog.providerCredentials(provider.id),
        fetch: this.#deps.fetch,
        ...(this.#deps.smallFetch === undefined ? {} : { smallFetch: this.#deps.smallFetch }),
        policy: this.#deps.policy,
        clock,
      }),
    );
  }

  #cached(key: string, updatedAt: number, build: () => Promise<OAuthClient>): Promise<OAuthClient> {
    const { clock } = this.#deps;
    const versioned = `${key}@${updatedAt}`;
    const cached = this.#cache.get(versioned);
    if (cached !== undefined && clock.now() - cached.at < this.#deps.ttlMs) return cached.client;
    const client = build();
    this.forget(key);
    this.#cache.set(versioned, { at: clock.now(), client });
    // A failed build (provider down during discovery) must not stay cached.
    client.catch(() => this.#cache.delete(versioned));
    return client;
  }
}
