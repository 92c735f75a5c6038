import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';

export type NotificationType = 'connection.needs_reauth' | 'provider.config_error';

/** What the user sees: no secret, no upstream text. */
export interface NotificationView {
  id: string;
  type: NotificationType;
  connectionId: string | null;
  data: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
  resolvedAt: string | null;
}

/**
 * The audience that addresses every administrator (admins are not a fixed list in jwt mode).
 * `#` is outside the user-id alphabet (`userIdPattern`), so no user id can take it.
 */
export const adminsAudience = '#admins';

/**
 * In-app notifications plus the cross-instance event feed behind SSE: both written in the
 * caller's transaction, so an event exists exactly when the change it reports does.
 */
export class Notifications {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async create(
    trx: Kysely<Database>,
    n: { userId: string; type: NotificationType; connectionId: string | null; data: Record<string, unknown> },
  ): Promise<string> {
    const id = randomUUID();
    const now = this.#clock.now();
    await trx
      .insertInto('notifications')
      .values({
        id,
        user_id: n.userId,
        type: n.type,
        connection_id: n.connectionId,
        data: JSON.stringify(n.data),
        created_at: now,
        read_at: null,
        resolved_at: null,
      })
      .execute();
    await this.publish(trx, n.userId, 'notification', {
      id,
      type: n.type,
      connectionId: n.connectionId,
      ...n.data,
    });
    return id;
  }

  /** Appends to the event feed that every instance's SSE streams read. */
  async publish(
    trx: Kysely<Database>,
    userId: string,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    await trx
      .insertInto('events')
      .values({ user_id: userId, type, data: JSON.stringify(data), created_at: this.#clock.now() })
      .execute();
  }

  /** Marks a connection's open notifications resolved (after Reconnect or Disconnect). */
  async resolveForConnection(trx: Kysely<Database>, connectionId: string): Promise<void> {
    await trx
      .updateTable('notifications')
      .set({ resolved_at: this.#clock.now() })
      .where('connection_id', '=', connectionId)
      .where('resolved_at', 'is', null)
      .execute();
  }

  /** Whether an unresolved notification of this type exists for the target (said once per incident). */
  async hasOpen(
    trx: Kysely<Database>,
    userId: string,
    type: NotificationType,
    key: string | null,
  ): Promise<boolean> {
    let q = trx
      .selectFrom('notifications')
      .select('id')
      .where('user_id', '=', userId)
      .where('type', '=', type)
      .where('resolved_at', 'is', null);
    q = key === null ? q.where('connection_id', 'is', null) : q.where('connection_id', '=', key);
    return (await q.limit(1).executeTakeFirst()) !== undefined;
  }

  async list(
    userId: string,
    options: { unresolvedOnly?: boolean; limit?: number } = {},
  ): Promise<NotificationView[]> {
    let q = this.#db
      .selectFrom('notifications')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .limit(Math.min(options.limit ?? 50, 200));
    if (options.unresolvedOnly) q = q.where('resolved_at', 'is', null);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return (await q.execute()).map((r) => ({
      id: r.id,
      type: r.type as NotificationType,
      connectionId: r.connection_id,
      data: JSON.parse(r.data),
      createdAt: new Date(r.created_at).toISOString(),
      readAt: iso(r.read_at),
      resolvedAt: iso(r.resolved_at),
    }));
  }

  /** Marks one of the user's notifications read; false when it is not theirs or does not exist. */
  async markRead(userId: string, id: string): Promise<boolean> {
    const r = await this.#db
      .updateTable('notifications')
      .set({ read_at: this.#clock.now() })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Events for a user after `afterId` (SSE polling; works across instances). */
  async eventsAfter(userId: string, afterId: number, limit = 100) {
    return this.#db
      .selectFrom('events')
      .selectAll()
      .where('user_id', '=', userId)
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  async latestEventId(userId: string): Promise<number> {
    const r = await this.#db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r?.id ?? 0);
  }
}
