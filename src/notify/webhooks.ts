import { createHmac, randomInt, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import type { OutboundFetch } from '../oauth/outbound.js';
import type { Logger } from '../observability/logger.js';
import type { Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import { WebhookEndpoints } from './webhook-endpoints.js';

export type WebhookEventType =
  | 'connection.created'
  | 'connection.reconnected'
  | 'connection.needs_reauth'
  | 'connection.deleted';

export interface WebhookEventData {
  connectionId: string;
  userId: string;
  integration: string;
  reason?: string;
}

/** The signature header value: `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`. @see contract §6 */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** Delay before attempt `n` (1-based) after a failure: 10 s doubling, capped at 1 h, ±20 % jitter. */
export function webhookBackoffMs(attempt: number, random = () => randomInt(1_000_000) / 1_000_000): number {
  const base = Math.min(60 * 60 * 1000, 10_000 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export const maxWebhookAttempts = 12;

export type { WebhookEndpointChange, WebhookEndpointView } from './webhook-endpoints.js';

export interface WebhookDeliveryView {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

/**
 * Webhooks through an outbox: `enqueue` writes one delivery row per subscribed endpoint in the
 * caller's transaction (so an event exists exactly when its change does); `deliverDue` claims
 * due rows with a lease (any instance may run it), POSTs them signed, and records the outcome,
 * retrying with backoff.
 * The endpoints themselves are {@link WebhookEndpoints}.
 */
export class Webhooks extends WebhookEndpoints {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;
  readonly #fetch: OutboundFetch;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #leaseMs: number;

  constructor(deps: {
    db: Kysely<Database>;
    sealer: Sealer;
    fetch: OutboundFetch;
    clock: Clock;
    logger: Logger;
    /** How long a claimed delivery is ours; must exceed one POST's timeout (default 60 s). */
    leaseMs?: number;
  }) {
    super(deps);
    this.#db = deps.db;
    this.#sealer = deps.sealer;
    this.#fetch = deps.fetch;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#leaseMs = deps.leaseMs ?? 60_000;
  }

  /** Recent deliveries, newest first, with their outcome (never the signature or the secret). */
  async recentDeliveries(
    options: { endpointId?: string; limit?: number } = {},
  ): Promise<WebhookDeliveryView[]> {
    let q = this.#db
      .selectFrom('webhook_deliveries')
      .select([
        'id',
        'endpoint_id',
        'event_id',
        'event_type',
        'status',
        'attempts',
        'last_status',
        'last_error',
        'created_at',
        'delivered_at',
        'next_attempt_at',
      ])
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(Math.min(options.limit ?? 50, 500));
    if (options.endpointId !== undefined) q = q.where('endpoint_id', '=', options.endpointId);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return (await q.execute()).map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      eventId: r.event_id,
      eventType: r.event_type,
      status: r.status,
      attempts: r.attempts,
      lastStatus: r.last_status,
      lastError: r.last_error,
      createdAt: new Date(r.created_at).toISOString(),
      deliveredAt: iso(r.delivered_at),
      nextAttemptAt: iso(r.next_attempt_at),
    }));
  }

  /**
   * Sends a delivery's event again, as a new delivery of the same event id (receivers that
   * de-duplicate by id see it once): for a failed one, or one the receiver lost. Undefined when
   * the delivery does not exist or its endpoint is gone or disabled.
   */
  async redeliver(deliveryId: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('webhook_deliveries')
      .innerJoin('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
      .select([
        'webhook_deliveries.endpoint_id',
        'webhook_deliveries.event_id',
        'webhook_deliveries.event_type',
        'webhook_deliveries.payload',
      ])
      .where('webhook_deliveries.id', '=', deliveryId)
      .where('webhook_endpoints.enabled', '=', 1)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return newDelivery(
      this.#db,
      row.endpoint_id,
      row.event_id,
      row.event_type,
      row.payload,
      this.#clock.now(),
    );
  }

  /** Records an event for every endpoint subscribed to it, inside the caller's transaction. */
  async enqueue(trx: Kysely<Database>, type: WebhookEventType, data: WebhookEventData): Promise<void> {
    const endpoints = await trx
      .selectFrom('webhook_endpoints')
      .select(['id', 'events'])
      .where('enabled', '=', 1)
      .execute();
    const now = this.#clock.now();
    const eventId = randomUUID();
    const payload = JSON.stringify({ id: eventId, type, createdAt: new Date(now).toISOString(), data });
    for (const e of endpoints) {
      if (e.events !== null && !(JSON.parse(e.events) as string[]).includes(type)) continue;
      await newDelivery(trx, e.id, eventId, type, payload, now);
    }
  }

  /**
   * Delivers what is due (up to `limit`), one at a time, each claimed by a compare-and-set lease
   * taken when it is sent (a lease computed at the start of a slow batch would be born expired,
   * and another instance would send the same delivery). Returns how many were tried.
   */
  async deliverDue(limit = 20): Promise<number> {
    const due = await this.#db
      .selectFrom('webhook_deliveries')
      .select(['id'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', this.#clock.now())
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', this.#clock.now())]))
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    let tried = 0;
    for (const d of due) {
      const lease = await this.#claim(d.id);
      if (lease === undefined) continue;
      tried++;
      await this.#deliver(d.id, lease);
    }
    return tried;
  }

  /**
   * Claims one delivery if it is still pending, due and unleased, as of now. Returns the lease's
   * end, which also fences the outcome write: a later claim always ends later, so a worker whose
   * lease ran out cannot overwrite the new holder's outcome.
   */
  async #claim(id: string): Promise<number | undefined> {
    const now = this.#clock.now();
    const leaseUntil = now + this.#leaseMs;
    const claimed = await this.#db
      .updateTable('webhook_deliveries')
      .set({ lease_until: leaseUntil })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    return Number(claimed.numUpdatedRows) === 1 ? leaseUntil : undefined;
  }

  async #deliver(id: string, lease: number): Promise<void> {
    const row = await this.#db
      .selectFrom('webhook_deliveries')
      .innerJoin('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
      .select([
        'webhook_deliveries.payload',
        'webhook_deliveries.attempts',
        'webhook_endpoints.url',
        'webhook_endpoints.secret_sealed',
        'webhook_endpoints.id as endpoint_id',
      ])
      .where('webhook_deliveries.id', '=', id)
      .where('webhook_endpoints.enabled', '=', 1)
      .executeTakeFirst();
    if (row === undefined) {
      // The endpoint was removed from the config: stop trying.
      await this.#db
        .updateTable('webhook_deliveries')
        .set({ status: 'failed', lease_until: null, next_attempt_at: null, last_error: 'endpoint_removed' })
        .where('id', '=', id)
        .where('lease_until', '=', lease)
        .execute();
      return;
    }
    const attempts = row.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.#sealer.open(row.secret_sealed, {
        table: 'webhook_endpoints',
        rowId: row.endpoint_id,
        field: 'secret_sealed',
      });
      const t = Math.floor(this.#clock.now() / 1000);
      const response = await this.#fetch(row.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'nunq-signature': signWebhook(secret, row.payload, t),
          'user-agent': 'nunq-connect-webhooks',
        },
        body: row.payload,
      });
      status = response.status;
      await response.body?.cancel();
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = e instanceof Error ? ((e as { code?: string }).code ?? e.name) : 'error';
    }
    const now = this.#clock.now();
    const delivered = error === null;
    await this.#db
      .updateTable('webhook_deliveries')
      .set({
        attempts,
        last_status: status,
        last_error: error,
        lease_until: null,
        status: delivered ? 'delivered' : attempts >= maxWebhookAttempts ? 'failed' : 'pending',
        delivered_at: delivered ? now : null,
        next_attempt_at:
          delivered || attempts >= maxWebhookAttempts ? null : now + webhookBackoffMs(attempts),
      })
      .where('id', '=', id)
      .where('lease_until', '=', lease)
      .execute();
    if (!delivered) this.#logger.warn({ delivery: id, attempts, status, error }, 'webhook delivery failed');
  }
}

/** Queues one event for one endpoint, due now; returns the delivery's id. */
async function newDelivery(
  db: Kysely<Database>,
  endpointId: string,
  eventId: string,
  eventType: string,
  payload: string,
  now: number,
): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('webhook_deliveries')
    .values({
      id,
      endpoint_id: endpointId,
      event_id: eventId,
      event_type: eventType,
      payload,
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      lease_until: null,
      last_status: null,
      last_error: null,
      created_at: now,
      delivered_at: null,
    })
    .execute();
  return id;
}
