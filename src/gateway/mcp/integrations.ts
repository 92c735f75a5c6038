import {
  type CatalogRepository,
  catalogCacheMs as cacheMs,
  type IntegrationRecord,
} from '../../store/repos/catalog.js';

/** MCP integrations from the catalog, cached {@link cacheMs} (an admin's change reaches every instance within that). */
export class McpIntegrations {
  readonly #catalog: Pick<CatalogRepository, 'getIntegration' | 'listIntegrations'>;
  readonly #cache = new Map<string, { at: number; value: Promise<IntegrationRecord | undefined> }>();
  #all: { at: number; value: Promise<IntegrationRecord[]> } | undefined;

  constructor(catalog: Pick<CatalogRepository, 'getIntegration' | 'listIntegrations'>) {
    this.#catalog = catalog;
  }

  /** The integration when it exists and is an MCP server (enabled or not); undefined otherwise. */
  async get(id: string): Promise<IntegrationRecord | undefined> {
    const now = Date.now();
    let hit = this.#cache.get(id);
    if (hit === undefined || now - hit.at >= cacheMs) {
      if (this.#cache.size >= 1_000) this.#cache.clear();
      hit = { at: now, value: this.#catalog.getIntegration(id) };
      this.#cache.set(id, hit);
      hit.value.catch(() => this.#cache.delete(id));
    }
    const integration = await hit.value;
    return integration?.kind === 'mcp' && integration.settings.url !== undefined ? integration : undefined;
  }

  /** Every enabled MCP integration. */
  async enabled(): Promise<IntegrationRecord[]> {
    const now = Date.now();
    if (this.#all === undefined || now - this.#all.at >= cacheMs) {
      const value = this.#catalog.listIntegrations();
      this.#all = { at: now, value };
      value.catch(() => {
        this.#all = undefined;
      });
    }
    return (await this.#all.value).filter(
      (i) => i.kind === 'mcp' && i.enabled && i.settings.url !== undefined,
    );
  }
}
