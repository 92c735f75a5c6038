import type { Kysely } from 'kysely';
import type { Database, Millis, PendingAuthorizationsTable } from '../types.js';

export type PendingAuthorizationRow = PendingAuthorizationsTable;

/** Why a callback's state was refused. Only the flow's error page shows the difference. */
export type ConsumeFailure = 'unknown' | 'foreign' | 'expired' | 'used';

/** Authorizations in flight, keyed by the SHA-256 of their `state`. */
export class PendingAuthorizationRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async create(row: PendingAuthorizationRow): Promise<void> {
    await this.#db.insertInto('pending_authorizations').values(row).execute();
  }

  /**
   * Consumes the authorization atomically: only an unexpired, unused row of this user is
   * marked used, by one conditional UPDATE, so a replayed or concurrent callback gets nothing.
   * A foreign, expired or used state is left exactly as it was.
   */
  async consume(
    stateHash: string,
    userId: string,
    now: Millis,
  ): Promise<{ ok: true; row: PendingAuthorizationRow } | { ok: false; reason: ConsumeFailure }> {
    const result = await this.#db
      .updateTable('pending_authorizations')
      .set({ consumed_at: now })
      .where('state_hash', '=', stateHash)
      .where('user_id', '=', userId)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    const row = await this.#db
      .selectFrom('pending_authorizations')
      .selectAll()
      .where('state_hash', '=', stateHash)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1 && row !== undefined) return { ok: true, row };
    if (row === undefined) return { ok: false, reason: 'unknown' };
    if (row.user_id !== userId) return { ok: false, reason: 'foreign' };
    if (row.consumed_at !== null) return { ok: false, reason: 'used' };
    return { ok: false, reason: 'expired' };
  }

  /** Housekeeping: forgets authorizations that expired more than a day ago. */
  async deleteExpired(now: Millis): Promise<number> {
    const r = await this.#db
      .deleteFrom('pending_authorizations')
      .where('expires_at', '<', now - 24 * 60 * 60 * 1000)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
