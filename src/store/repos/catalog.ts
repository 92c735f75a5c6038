import type { Kysely } from 'kysely';
import type { Sealer } from '../../crypto/index.js';
import type { ConfigSource, Database, IntegrationKind, Millis } from '../types.js';

/** A provider as stored: non-secret settings in clear, credentials sealed. */
export interface ProviderRecord {
  id: string;
  type: string;
  settings: Record<string, unknown>;
  hasCredentials: boolean;
  source: ConfigSource;
  enabled: boolean;
  updatedAt: Millis;
}

/** Secrets of a provider or MCP server client, opened only when a token request needs them. */
export interface ClientCredentials {
  clientSecret?: string;
  privateKey?: string | Record<string, unknown>;
}

export interface IntegrationRecord {
  id: string;
  kind: IntegrationKind;
  name: string;
  providerId: string | null;
  settings: IntegrationSettings;
  hasCredentials: boolean;
  source: ConfigSource;
  enabled: boolean;
  updatedAt: Millis;
}

export interface IntegrationSettings {
  scopes: string[];
  description?: string;
  api?: { baseUrl: string };
  authorizationParams?: Record<string, string>;
  /** MCP servers: the server URL and an optional pre-registered client id. */
  url?: string;
  clientId?: string;
}

export interface ProviderInput {
  id: string;
  type: string;
  settings: Record<string, unknown>;
  credentials: ClientCredentials | null;
  source: ConfigSource;
  enabled: boolean;
}

export interface IntegrationInput {
  id: string;
  kind: IntegrationKind;
  name: string;
  providerId: string | null;
  settings: IntegrationSettings;
  credentials: ClientCredentials | null;
  source: ConfigSource;
  enabled: boolean;
}

/** Providers and integrations, whether from the config file or added by an administrator. */
export class CatalogRepository {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;

  constructor(db: Kysely<Database>, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  async listIntegrations(options: { includeDisabled?: boolean } = {}): Promise<IntegrationRecord[]> {
    let q = this.#db.selectFrom('integrations').selectAll().orderBy('name').orderBy('id');
    if (options.includeDisabled !== true) q = q.where('enabled', '=', 1);
    return (await q.execute()).map(toIntegration);
  }

  async getIntegration(id: string): Promise<IntegrationRecord | undefined> {
    const row = await this.#db.selectFrom('integrations').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toIntegration(row);
  }

  async listProviders(): Promise<ProviderRecord[]> {
    const rows = await this.#db.selectFrom('providers').selectAll().orderBy('id').execute();
    return rows.map(toProvider);
  }

  async getProvider(id: string): Promise<ProviderRecord | undefined> {
    const row = await this.#db.selectFrom('providers').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toProvider(row);
  }

  /** Opens a provider's sealed credentials (client secret, private key). */
  async providerCredentials(id: string): Promise<ClientCredentials> {
    const row = await this.#db
      .selectFrom('providers')
      .select('client_secret_sealed')
      .where('id', '=', id)
      .executeTakeFirst();
    return this.#openCredentials('providers', id, row?.client_secret_sealed ?? null);
  }

  /** Opens the sealed credentials configured for an MCP server integration. */
  async integrationCredentials(id: string): Promise<ClientCredentials> {
    const row = await this.#db
      .selectFrom('integrations')
      .select('client_secret_sealed')
      .where('id', '=', id)
      .executeTakeFirst();
    return this.#openCredentials('integrations', id, row?.client_secret_sealed ?? null);
  }

  #openCredentials(
    table: 'providers' | 'integrations',
    id: string,
    sealed: string | null,
  ): ClientCredentials {
    if (sealed === null) return {};
    return JSON.parse(this.#sealer.open(sealed, { table, rowId: id, field: 'client_secret_sealed' }));
  }

  /** Inserts or replaces a provider; credentials are re-sealed only when they changed. */
  async upsertProvider(p: ProviderInput, now: Millis): Promise<void> {
    const existing = await this.#db
      .selectFrom('providers')
      .select(['client_secret_sealed', 'settings', 'type', 'enabled', 'source'])
      .where('id', '=', p.id)
      .executeTakeFirst();
    const sealed = this.#resealIfChanged(
      'providers',
      p.id,
      p.credentials,
      existing?.client_secret_sealed ?? null,
    );
    const settings = JSON.stringify(p.settings);
    const values = {
      type: p.type,
      settings,
      client_secret_sealed: sealed,
      source: p.source,
      enabled: p.enabled ? 1 : 0,
      updated_at: now,
    };
    if (existing === undefined) {
      await this.#db
        .insertInto('providers')
        .values({ id: p.id, ...values, created_at: now })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    } else if (
      existing.settings !== settings ||
      existing.type !== p.type ||
      existing.enabled !== values.enabled ||
      existing.source !== p.source ||
      existing.client_secret_sealed !== sealed
    ) {
      await this.#db.updateTable('providers').set(values).where('id', '=', p.id).execute();
    }
  }

  async upsertIntegration(i: IntegrationInput, now: Millis): Promise<void> {
    const existing = await this.#db
      .selectFrom('integrations')
      .select(['client_secret_sealed', 'settings', 'name', 'kind', 'provider_id', 'enabled', 'source'])
      .where('id', '=', i.id)
      .executeTakeFirst();
    const sealed = this.#resealIfChanged(
      'integrations',
      i.id,
      i.credentials,
      existing?.client_secret_sealed ?? null,
    );
    const settings = JSON.stringify(i.settings);
    const values = {
      kind: i.kind,
      name: i.name,
      provider_id: i.providerId,
      settings,
      client_secret_sealed: sealed,
      source: i.source,
      enabled: i.enabled ? 1 : 0,
      updated_at: now,
    };
    if (existing === undefined) {
      await this.#db
        .insertInto('integrations')
        .values({ id: i.id, ...values, created_at: now })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    } else if (
      existing.settings !== settings ||
      existing.name !== i.name ||
      existing.kind !== i.kind ||
      existing.provider_id !== i.providerId ||
      existing.enabled !== values.enabled ||
      existing.source !== i.source ||
      existing.client_secret_sealed !== sealed
    ) {
      await this.#db.updateTable('integrations').set(values).where('id', '=', i.id).execute();
    }
  }

  /** Disables config-sourced entries that the config no longer lists (their connections stay). */
  async disableMissingFromConfig(
    providerIds: string[],
    integrationIds: string[],
    now: Millis,
  ): Promise<void> {
    let p = this.#db
      .updateTable('providers')
      .set({ enabled: 0, updated_at: now })
      .where('source', '=', 'config');
    if (providerIds.length > 0) p = p.where('id', 'not in', providerIds);
    await p.where('enabled', '=', 1).execute();
    let i = this.#db
      .updateTable('integrations')
      .set({ enabled: 0, updated_at: now })
      .where('source', '=', 'config');
    if (integrationIds.length > 0) i = i.where('id', 'not in', integrationIds);
    await i.where('enabled', '=', 1).execute();
  }

  #resealIfChanged(
    table: 'providers' | 'integrations',
    id: string,
    credentials: ClientCredentials | null,
    existing: string | null,
  ): string | null {
    if (credentials === null || Object.keys(credentials).length === 0) return null;
    const plaintext = JSON.stringify(credentials);
    const ctx = { table, rowId: id, field: 'client_secret_sealed' };
    if (existing !== null && !this.#sealer.needsRotation(existing)) {
      try {
        if (this.#sealer.open(existing, ctx) === plaintext) return existing;
      } catch {
        // An unreadable old value is simply replaced by the configured one.
      }
    }
    return this.#sealer.seal(plaintext, ctx);
  }
}

function toProvider(row: Database['providers']): ProviderRecord {
  return {
    id: row.id,
    type: row.type,
    settings: JSON.parse(row.settings),
    hasCredentials: row.client_secret_sealed !== null,
    source: row.source,
    enabled: row.enabled === 1,
    updatedAt: row.updated_at,
  };
}

function toIntegration(row: Database['integrations']): IntegrationRecord {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    providerId: row.provider_id,
    settings: JSON.parse(row.settings),
    hasCredentials: row.client_secret_sealed !== null,
    source: row.source,
    enabled: row.enabled === 1,
    updatedAt: row.updated_at,
  };
}
