import type { Kysely } from 'kysely';
import type { Sealer } from '../../crypto/index.js';
import type { ConfigSource, Database, IntegrationKind, Millis } from '../types.js';
import { AdminCatalogWrites } from './catalog-admin.js';

/** A provider as stored: non-secret settings in clear, credentials sealed. */
export interface ProviderRecord {
  id: string;
  type: string;
  settings: Record<string, unknown>;
  hasCredentials: boolean;
  /** When the sealed credentials were last set or cleared (null: never). */
  clientSecretChangedAt: Millis | null;
  source: ConfigSource;
  enabled: boolean;
  createdAt: Millis;
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
  clientSecretChangedAt: Millis | null;
  source: ConfigSource;
  /** Usable now: the integration and its provider (if any) are both enabled. */
  enabled: boolean;
  /** The integration's own switch, as an admin set it (its provider may still be disabled). */
  ownEnabled: boolean;
  createdAt: Millis;
  updatedAt: Millis;
}

export interface IntegrationSettings {
  scopes: string[];
  description?: string;
  api?: { baseUrl: string };
  authorizationParams?: Record<string, string>;
  /** MCP servers: the server URL and an optional pre-registered client (secret sealed apart). */
  url?: string;
  clientId?: string;
  clientAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  pkce?: 'assume-s256';
  resource?: 'omit';
  /** Only users in one of these groups see and use it (absent: everyone). */
  groups?: string[];
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

/**
 * How long an in-memory copy of catalog data may serve (the proxy's, the MCP gateway's, the
 * refresh path's): an admin's change is in force on every instance within this, without a
 * restart or a broadcast (the database carries it). Keep it at or under 2 s (issue 10).
 */
export const catalogCacheMs = 1_000;

/** Providers and integrations, whether from the config file or added by an administrator. */
export class CatalogRepository {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;
  /** The admin API's writes (entries with `source: admin`). */
  readonly admin: AdminCatalogWrites;

  constructor(db: Kysely<Database>, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
    this.admin = new AdminCatalogWrites(db, sealer);
  }

  /** Integrations (and MCP servers); without `includeDisabled`, those usable now only. */
  async listIntegrations(options: { includeDisabled?: boolean } = {}): Promise<IntegrationRecord[]> {
    let q = this.#integrations().orderBy('integrations.name').orderBy('integrations.id');
    if (options.includeDisabled !== true) {
      q = q
        .where('integrations.enabled', '=', 1)
        .where((eb) => eb.or([eb('providers.enabled', 'is', null), eb('providers.enabled', '=', 1)]));
    }
    return (await q.execute()).map(toIntegration);
  }

  async getIntegration(id: string): Promise<IntegrationRecord | undefined> {
    const row = await this.#integrations().where('integrations.id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toIntegration(row);
  }

  /** Integrations joined with their provider's switch: a disabled provider disables its integrations. */
  #integrations() {
    return this.#db
      .selectFrom('integrations')
      .leftJoin('providers', 'providers.id', 'integrations.provider_id')
      .selectAll('integrations')
      .select('providers.enabled as provider_enabled');
  }

  /** The ids of the integrations that use a provider. */
  async integrationsUsing(providerId: string): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('integrations')
      .select('id')
      .where('provider_id', '=', providerId)
      .orderBy('id')
      .execute();
    return rows.map((r) => r.id);
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
      .select(['client_secret_sealed', 'client_secret_changed_at', 'settings', 'type', 'enabled', 'source'])
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
      client_secret_changed_at: this.#secretChangedAt('providers', p.id, existing, sealed, now),
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
    await this.upsertIntegrations([i], now);
  }

  /**
   * Inserts or replaces many integrations at once (the config file's, at every start): one read
   * of what is stored, inserts in bounded batches, an update only for what changed, all in one
   * transaction. Any number works: no statement binds more than `batchSize` rows.
   */
  async upsertIntegrations(inputs: readonly IntegrationInput[], now: Millis): Promise<void> {
    if (inputs.length === 0) return;
    await this.#db.transaction().execute(async (trx) => {
      const existing = new Map<string, StoredIntegration>();
      for (const ids of chunks(
        inputs.map((i) => i.id),
        batchSize,
      )) {
        const rows = await trx
          .selectFrom('integrations')
          .select([
            'id',
            'client_secret_sealed',
            'client_secret_changed_at',
            'settings',
            'name',
            'kind',
            'provider_id',
            'enabled',
            'source',
          ])
          .where('id', 'in', ids)
          .execute();
        for (const row of rows) existing.set(row.id, row);
      }
      const inserts: Array<Database['integrations']> = [];
      for (const i of inputs) {
        const stored = existing.get(i.id);
        const sealed = this.#resealIfChanged(
          'integrations',
          i.id,
          i.credentials,
          stored?.client_secret_sealed ?? null,
        );
        const values = {
          kind: i.kind,
          name: i.name,
          provider_id: i.providerId,
          settings: JSON.stringify(i.settings),
          client_secret_sealed: sealed,
          client_secret_changed_at: this.#secretChangedAt('integrations', i.id, stored, sealed, now),
          source: i.source,
          enabled: i.enabled ? 1 : 0,
          updated_at: now,
        };
        if (stored === undefined) inserts.push({ id: i.id, ...values, created_at: now });
        else if (integrationChanged(stored, values)) {
          await trx.updateTable('integrations').set(values).where('id', '=', i.id).execute();
        }
      }
      for (const batch of chunks(inserts, batchSize)) {
        await trx
          .insertInto('integrations')
          .values(batch)
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
    });
  }

  /**
   * Disables config-sourced entries that the config no longer lists (their connections stay).
   * The lists may be long: what to disable is worked out here and updated in bounded batches.
   */
  async disableMissingFromConfig(
    providerIds: string[],
    integrationIds: string[],
    now: Millis,
  ): Promise<void> {
    for (const table of ['providers', 'integrations'] as const) {
      const keep = new Set(table === 'providers' ? providerIds : integrationIds);
      const enabled = await this.#db
        .selectFrom(table)
        .select('id')
        .where('source', '=', 'config')
        .where('enabled', '=', 1)
        .execute();
      const missing = enabled.map((r) => r.id).filter((id) => !keep.has(id));
      for (const ids of chunks(missing, batchSize)) {
        await this.#db
          .updateTable(table)
          .set({ enabled: 0, updated_at: now })
          .where('id', 'in', ids)
          .where('source', '=', 'config')
          .execute();
      }
    }
  }

  /** Which of these ids an administrator created at run time (`source: admin`). */
  async adminIdsAmong(table: 'providers' | 'integrations', ids: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    for (const batch of chunks(ids, batchSize)) {
      const rows = await this.#db
        .selectFrom(table)
        .select('id')
        .where('id', 'in', batch)
        .where('source', '=', 'admin')
        .execute();
      found.push(...rows.map((r) => r.id));
    }
    return found;
  }

  /**
   * When the sealed secret last changed: kept while it holds the same value (re-sealed under a
   * new key or not), else now.
   */
  #secretChangedAt(
    table: 'providers' | 'integrations',
    id: string,
    stored: { client_secret_sealed: string | null; client_secret_changed_at: Millis | null } | undefined,
    sealed: string | null,
    now: Millis,
  ): Millis | null {
    if (stored === undefined) return sealed === null ? null : now;
    const before = stored.client_secret_sealed;
    if (before === sealed) return stored.client_secret_changed_at;
    if (before === null || sealed === null) return now;
    try {
      const ctx = { table, rowId: id, field: 'client_secret_sealed' };
      return this.#sealer.open(before, ctx) === this.#sealer.open(sealed, ctx)
        ? stored.client_secret_changed_at
        : now;
    } catch {
      return now;
    }
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

type StoredIntegration = Pick<
  Database['integrations'],
  | 'id'
  | 'client_secret_sealed'
  | 'client_secret_changed_at'
  | 'settings'
  | 'name'
  | 'kind'
  | 'provider_id'
  | 'enabled'
  | 'source'
>;

function integrationChanged(stored: StoredIntegration, next: Omit<StoredIntegration, 'id'>): boolean {
  return (
    stored.settings !== next.settings ||
    stored.name !== next.name ||
    stored.kind !== next.kind ||
    stored.provider_id !== next.provider_id ||
    stored.enabled !== next.enabled ||
    stored.source !== next.source ||
    stored.client_secret_sealed !== next.client_secret_sealed
  );
}

/**
 * Rows per statement: SQLite binds at most 32,766 parameters, PostgreSQL 65,535; an integration
 * row has ten columns.
 */
export const batchSize = 500;

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function toProvider(row: Database['providers']): ProviderRecord {
  return {
    id: row.id,
    type: row.type,
    settings: JSON.parse(row.settings),
    hasCredentials: row.client_secret_sealed !== null,
    clientSecretChangedAt:
      row.client_secret_changed_at === null ? null : Number(row.client_secret_changed_at),
    source: row.source,
    enabled: row.enabled === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toIntegration(
  row: Database['integrations'] & { provider_enabled: number | null },
): IntegrationRecord {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    providerId: row.provider_id,
    settings: JSON.parse(row.settings),
    hasCredentials: row.client_secret_sealed !== null,
    clientSecretChangedAt:
      row.client_secret_changed_at === null ? null : Number(row.client_secret_changed_at),
    source: row.source,
    enabled: row.enabled === 1 && row.provider_enabled !== 0,
    ownEnabled: row.enabled === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
