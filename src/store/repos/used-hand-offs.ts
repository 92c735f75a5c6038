import type { Kysely } from 'kysely';
import type { Database, Millis } from '../types.js';

/** Hand-off tokens already accepted at `/session`, by key hash; one row per token, ever. */
export class UsedHandOffRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Records a use; true for the first, false when the key was used before. One conditional
   * INSERT on the primary key, so of two concurrent uses on any instances exactly one wins.
   */
  async claim(keyHash: string, expiresAt: Millis, now: Millis): Promise<boolean> {
    const result = await this.#db
      .insertInto('used_hand_offs')
      .values({ key_hash: keyHash, used_at: now, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /** True when the key was already used (a read for the "switch account?" page; `claim` decides). */
  async isUsed(keyHash: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('used_hand_offs')
      .select('key_hash')
      .where('key_hash', '=', keyHash)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Removes rows whose token has expired (it can no longer be verified); run by housekeeping. */
  async deleteExpired(now: Millis): Promise<number> {
    const r = await this.#db.deleteFrom('used_hand_offs').where('expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
