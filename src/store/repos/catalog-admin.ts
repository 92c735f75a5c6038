import type { Kysely } from 'kysely';
import type { Sealer } from '../../crypto/index.js';
import type { Database, Millis } from '../types.js';
import type { ClientCredentials, IntegrationInput, ProviderInput } from './catalog.js';

/** Work done in the transaction of a catalog write once it took effect (the audit row). */
export type InTransaction = (db: Kysely<Database>) => Promise<void>;

/** How a guarded write ended: `stale` when the row changed since it was read (or is gone). */
export type WriteOutcome = 'done' | 'stale';

/**
 * The admin API's writes to the catalog: entries with `source: admin` only (the config file's
 * belong to the file, and every statement here says so). Each takes an optional `then`, run in
 * the write's transaction once it took effect: the audit row.
 */
export class AdminCatalogWrites {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;

  constructor(db: Kysely<Database>, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** Inserts an admin's provider; false when the id is taken. */
  async createProvider(
    p: Omit<ProviderInput, 'source'>,
    now: Millis,
    then?: InTransaction,
  ): Promise<boolean> {
    const sealed = this.#seal('providers', p.id, p.credentials);
    return this.#write(then, async (db) => {
      const r = await db
        .insertInto('providers')
        .values({
          id: p.id,
          type: p.type,
          settings: JSON.stringify(p.settings),
          client_secret_sealed: sealed,
          client_secret_changed_at: sealed === null ? null : now,
          source: 'admin',
          enabled: p.enabled ? 1 : 0,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
    });
  }

  /**
   * Replaces an admin's provider. `credentials: 'keep'` leaves the sealed secret as it is. With
   * `expectedUpdatedAt`, a row changed meanwhile is left alone (`stale`): never a silent overwrite.
   */
  async updateProvider(
    p: Omit<ProviderInput, 'source' | 'credentials'> & { credentials: ClientCredentials | null | 'keep' },
    now: Millis,
    expectedUpdatedAt: Millis,
    then?: InTransaction,
  ): Promise<WriteOutcome> {
    const secret =
      p.credentials === 'keep'
        ? {}
        : (() => {
            const sealed = this.#seal('providers', p.id, p.credentials);
            return { client_secret_sealed: sealed, client_secret_changed_at: now };
          })();
    return this.#write(then, async (db) => {
      const r = await db
        .updateTable('providers')
        .set({
          type: p.type,
          settings: JSON.stringify(p.settings),
          enabled: p.enabled ? 1 : 0,
          updated_at: Math.max(now, expectedUpdatedAt + 1),
          ...secret,
        })
        .where('id', '=', p.id)
        .where('source', '=', 'admin')
        .where('updated_at', '=', expectedUpdatedAt)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1 ? 'done' : 'stale';
    });
  }

  /** Deletes an admin's provider unless an integration uses it; the ids of those that do. */
  async deleteProvider(id: string, then?: InTransaction): Promise<{ deleted: boolean; usedBy: string[] }> {
    return this.#db.transaction().execute(async (trx) => {
      const used = await trx
        .selectFrom('integrations')
        .select('id')
        .where('provider_id', '=', id)
        .orderBy('id')
        .execute();
      if (used.length > 0) return { deleted: false, usedBy: used.map((u) => u.id) };
      const r = await trx
        .deleteFrom('providers')
        .where('id', '=', id)
        .where('source', '=', 'admin')
        .executeTakeFirst();
      const deleted = Number(r.numDeletedRows) === 1;
      if (deleted) await then?.(trx);
      return { deleted, usedBy: [] };
    });
  }

  /** Inserts an admin's integration or MCP server; false when the id is taken (one namespace for both). */
  async createIntegration(
    i: Omit<IntegrationInput, 'source'>,
    now: Millis,
    then?: InTransaction,
  ): Promise<boolean> {
    const sealed = this.#seal('integrations', i.id, i.credentials);
    return this.#write(then, async (db) => {
      const r = await db
        .insertInto('integrations')
        .values({
          id: i.id,
          kind: i.kind,
          name: i.name,
          provider_id: i.providerId,
          settings: JSON.stringify(i.settings),
          client_secret_sealed: sealed,
          client_secret_changed_at: sealed === null ? null : now,
          source: 'admin',
          enabled: i.enabled ? 1 : 0,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
    });
  }

  /** Replaces an admin's integration or MCP server, as {@link updateProvider} does a provider. */
  async updateIntegration(
    i: Omit<IntegrationInput, 'source' | 'credentials'> & { credentials: ClientCredentials | null | 'keep' },
    now: Millis,
    expectedUpdatedAt: Millis,
    then?: InTransaction,
  ): Promise<WriteOutcome> {
    const secret =
      i.credentials === 'keep'
        ? {}
        : {
            client_secret_sealed: this.#seal('integrations', i.id, i.credentials),
            client_secret_changed_at: now,
          };
    return this.#write(then, async (db) => {
      const r = await db
        .updateTable('integrations')
        .set({
          kind: i.kind,
          name: i.name,
          provider_id: i.providerId,
          settings: JSON.stringify(i.settings),
          enabled: i.enabled ? 1 : 0,
          updated_at: Math.max(now, expectedUpdatedAt + 1),
          ...secret,
        })
        .where('id', '=', i.id)
        .where('source', '=', 'admin')
        .where('updated_at', '=', expectedUpdatedAt)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1 ? 'done' : 'stale';
    });
  }

  /**
   * Deletes an admin's integration or MCP server and what discovery recorded of it, unless it
   * still has connections (`has_connections`: the caller removes them first).
   */
  async deleteIntegration(
    id: string,
    then?: InTransaction,
  ): Promise<'done' | 'not_found' | 'has_connections'> {
    return this.#db.transaction().execute(async (trx) => {
      const left = await trx
        .selectFrom('connections')
        .select('id')
        .where('integration_id', '=', id)
        .limit(1)
        .executeTakeFirst();
      if (left !== undefined) return 'has_connections';
      const r = await trx
        .deleteFrom('integrations')
        .where('id', '=', id)
        .where('source', '=', 'admin')
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return 'not_found';
      await trx.deleteFrom('mcp_discovery').where('integration_id', '=', id).execute();
      await then?.(trx);
      return 'done';
    });
  }

  /** Runs a write, and `then` (the audit row) in the same transaction when the write took effect. */
  async #write<T extends boolean | WriteOutcome>(
    then: InTransaction | undefined,
    write: (db: Kysely<Database>) => Promise<T>,
  ): Promise<T> {
    if (then === undefined) return write(this.#db);
    return this.#db.transaction().execute(async (trx) => {
      const outcome = await write(trx);
      if (outcome === true || outcome === 'done') await then(trx);
      return outcome;
    });
  }

  #seal(
    table: 'providers' | 'integrations',
    id: string,
    credentials: ClientCredentials | null,
  ): string | null {
    if (credentials === null || Object.keys(credentials).length === 0) return null;
    return this.#sealer.seal(JSON.stringify(credentials), {
      table,
      rowId: id,
      field: 'client_secret_sealed',
    });
  }
}
