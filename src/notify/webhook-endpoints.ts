import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import type { Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import { sha256Hex } from '../support/hash.js';

/** A webhook endpoint as admins read it: never the secret, only that one is set. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  /** The event types sent there; null: all. */
  events: string[] | null;
  source: 'config' | 'admin';
  enabled: boolean;
  /** Always true: an endpoint cannot exist without its secret, which is never shown. */
  hasSecret: true;
  createdAt: string;
}

/** A change to an endpoint added at run time; a member left out is kept (the secret too). */
export interface WebhookEndpointChange {
  url?: string;
  /** The event types to send; null: all. */
  events?: readonly string[] | null;
  enabled?: boolean;
  /** A new signing secret (rotation): sealed, never shown again. */
  secret?: string;
}

/**
 * The webhook endpoints (`webhook_endpoints`): the config file's, made into rows at start, and
 * those added at run time through the console or the admin API, which may also edit, disable and
 * delete them. Secrets are sealed and never read back but to sign a delivery.
 */
export class WebhookEndpoints {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;
  readonly #clock: Clock;

  constructor(deps: { db: Kysely<Database>; sealer: Sealer; clock: Clock }) {
    this.#db = deps.db;
    this.#sealer = deps.sealer;
    this.#clock = deps.clock;
  }

  /** Makes config webhooks into endpoint rows (id derived from the URL), sealing their secrets. */
  async syncFromConfig(
    hooks: ReadonlyArray<{ url: string; secret: string; events?: readonly string[] | undefined }>,
  ): Promise<void> {
    const now = this.#clock.now();
    const ids: string[] = [];
    for (const h of hooks) {
      const id = `cfg_${sha256Hex(h.url).slice(0, 24)}`;
      ids.push(id);
      const events = h.events === undefined ? null : JSON.stringify(h.events);
      const existing = await this.#db
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      const ctx = { table: 'webhook_endpoints', rowId: id, field: 'secret_sealed' };
      let sameSecret = false;
      if (existing !== undefined) {
        try {
          sameSecret =
            this.#sealer.open(existing.secret_sealed, ctx) === h.secret &&
            !this.#sealer.needsRotation(existing.secret_sealed);
        } catch {
          sameSecret = false;
        }
      }
      if (existing === undefined) {
        await this.#db
          .insertInto('webhook_endpoints')
          .values({
            id,
            url: h.url,
            secret_sealed: this.#sealer.seal(h.secret, ctx),
            events,
            source: 'config',
            enabled: 1,
            created_at: now,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      } else if (!sameSecret || existing.events !== events || existing.enabled !== 1) {
        await this.#db
          .updateTable('webhook_endpoints')
          .set({
            secret_sealed: sameSecret ? existing.secret_sealed : this.#sealer.seal(h.secret, ctx),
            events,
            enabled: 1,
          })
          .where('id', '=', id)
          .execute();
      }
    }
    let q = this.#db.updateTable('webhook_endpoints').set({ enabled: 0 }).where('source', '=', 'config');
    if (ids.length > 0) q = q.where('id', 'not in', ids);
    await q.execute();
  }

  /** Every endpoint, for the admin console: never the secret, only that one is set. */
  async listEndpoints(): Promise<WebhookEndpointView[]> {
    const rows = await this.#db
      .selectFrom('webhook_endpoints')
      .select(['id', 'url', 'events', 'source', 'enabled', 'created_at'])
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      url: r.url,
      events: r.events === null ? null : (JSON.parse(r.events) as string[]),
      source: r.source,
      enabled: r.enabled === 1,
      hasSecret: true,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  /** Adds an endpoint at run time (`source: admin`), its secret sealed and never shown again. */
  async createEndpoint(input: {
    url: string;
    secret: string;
    events?: readonly string[] | undefined;
  }): Promise<WebhookEndpointView> {
    const id = `wh_${randomUUID()}`;
    const now = this.#clock.now();
    await this.#db
      .insertInto('webhook_endpoints')
      .values({
        id,
        url: input.url,
        secret_sealed: this.#sealer.seal(input.secret, {
          table: 'webhook_endpoints',
          rowId: id,
          field: 'secret_sealed',
        }),
        events: input.events === undefined ? null : JSON.stringify(input.events),
        source: 'admin',
        enabled: 1,
        created_at: now,
      })
      .execute();
    const created = (await this.listEndpoints()).find((e) => e.id === id);
    if (created === undefined) throw new Error('webhook endpoint vanished after insert');
    return created;
  }

  /**
   * Edits an endpoint added at run time. Disabling it stops its pending deliveries
   * (`endpoint_disabled`), and no event is queued for it while it is disabled; a new URL takes
   * effect from the next attempt. Config endpoints are the file's to change.
   */
  async updateEndpoint(
    id: string,
    change: WebhookEndpointChange,
  ): Promise<'updated' | 'from_config' | 'missing'> {
    const refused = await this.#refusedChange(id);
    if (refused !== undefined) return refused;
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .updateTable('webhook_endpoints')
        .set({
          ...(change.url === undefined ? {} : { url: change.url }),
          ...(change.events === undefined
            ? {}
            : { events: change.events === null ? null : JSON.stringify(change.events) }),
          ...(change.enabled === undefined ? {} : { enabled: change.enabled ? 1 : 0 }),
          ...(change.secret === undefined
            ? {}
            : {
                secret_sealed: this.#sealer.seal(change.secret, {
                  table: 'webhook_endpoints',
                  rowId: id,
                  field: 'secret_sealed',
                }),
              }),
        })
        .where('id', '=', id)
        .where('source', '=', 'admin')
        .execute();
      if (change.enabled === false) await stopPending(trx, id, 'endpoint_disabled');
    });
    return 'updated';
  }

  /**
   * Removes an endpoint added at run time; its pending deliveries stop (`endpoint_removed`).
   * Config endpoints are the file's to change.
   */
  async deleteEndpoint(id: string): Promise<'deleted' | 'from_config' | 'missing'> {
    const refused = await this.#refusedChange(id);
    if (refused !== undefined) return refused;
    await this.#db.transaction().execute(async (trx) => {
      await stopPending(trx, id, 'endpoint_removed');
      await trx.deleteFrom('webhook_endpoints').where('id', '=', id).execute();
    });
    return 'deleted';
  }

  /** Why an endpoint may not be changed here: it does not exist, or the config file owns it. */
  async #refusedChange(id: string): Promise<'missing' | 'from_config' | undefined> {
    const row = await this.#db
      .selectFrom('webhook_endpoints')
      .select(['source'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (row === undefined) return 'missing';
    return row.source === 'config' ? 'from_config' : undefined;
  }
}

/** Ends an endpoint's pending deliveries as failed, with the reason (it was disabled or removed). */
function stopPending(db: Kysely<Database>, endpointId: string, reason: string) {
  return db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', next_attempt_at: null, lease_until: null, last_error: reason })
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .execute();
}
