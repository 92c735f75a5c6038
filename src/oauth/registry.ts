import type { CatalogRepository } from '../store/repos/catalog.js';
import type { Clock } from '../support/clock.js';
import { ProviderError } from './errors.js';
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

/**
 * Gives the OAuth client of a provider, built on first use and cached for `ttlMs` (discovery
 * metadata changes rarely; a provider edited by an admin is rebuilt because the cache key
 * includes its `updatedAt`). A cache miss costs one discovery request; nothing here is shared
 * state another instance needs.
 */
export class ProviderClients {
  readonly #cache = new Map<string, { at: number; client: Promise<OAuthClient> }>();
  readonly #deps: {
    catalog: CatalogRepository;
    fetch: OutboundFetch;
    policy: OutboundPolicy;
    clock: Clock;
    ttlMs: number;
  };

  constructor(deps: {
    catalog: CatalogRepository;
    fetch: OutboundFetch;
    policy: OutboundPolicy;
    clock: Clock;
    ttlMs?: number;
  }) {
    this.#deps = { ...deps, ttlMs: deps.ttlMs ?? 60 * 60 * 1000 };
  }

  async forProvider(providerId: string): Promise<OAuthClient> {
    const { catalog, clock } = this.#deps;
    const provider = await catalog.getProvider(providerId);
    if (provider === undefined || !provider.enabled) {
      throw new ProviderError('config_error', `provider ${providerId} is not configured or disabled`);
    }
    const key = `${provider.id}@${provider.updatedAt}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined && clock.now() - cached.at < this.#deps.ttlMs) return cached.client;
    const factory = factories[provider.type];
    if (factory === undefined)
      throw new ProviderError('config_error', `provider type ${provider.type} is unknown`);
    const client = (async () =>
      factory({
        provider,
        credentials: await catalog.providerCredentials(provider.id),
        fetch: this.#deps.fetch,
        policy: this.#deps.policy,
        clock,
      }))();
    for (const k of this.#cache.keys()) if (k.startsWith(`${provider.id}@`)) this.#cache.delete(k);
    this.#cache.set(key, { at: clock.now(), client });
    // A failed build (provider down during discovery) must not stay cached.
    client.catch(() => this.#cache.delete(key));
    return client;
  }
}
