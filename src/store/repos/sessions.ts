import type { Kysely } from 'kysely';
import type { Database, Millis } from '../types.js';

export interface SessionRecord {
  userId: string;
  userName: string | null;
  role: string | null;
  groups: string[];
  csrfToken: string;
  expiresAt: Millis;
}

/** Browser sessions, stored by the SHA-256 of the cookie value so a database read cannot hijack one. */
export class SessionRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async create(idHash: string, s: SessionRecord, now: Millis): Promise<void> {
    await this.#db
      .insertInto('sessions')
      .values({
        id_hash: idHash,
        user_id: s.userId,
        user_name: s.userName,
        role: s.role,
        groups: s.groups.length === 0 ? null : JSON.stringify(s.groups),
        csrf_token: s.csrfToken,
        created_at: now,
        expires_at: s.expiresAt,
      })
      .execute();
  }

  async find(idHash: string, now: Millis): Promise<SessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('id_hash', '=', idHash)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      userId: row.user_id,
      userName: row.user_name,
      role: row.role,
      groups: row.groups === null ? [] : (JSON.parse(row.groups) as string[]),
      csrfToken: row.csrf_token,
      expiresAt: row.expires_at,
    };
  }

  async delete(idHash: string): Promise<void> {
    await this.#db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  /** Removes expired sessions; called by the housekeeping loop. */
  async deleteExpired(now: Millis): Promise<number> {
    const r = await this.#db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
