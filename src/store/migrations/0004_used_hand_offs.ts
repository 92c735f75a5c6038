import type { Kysely } from 'kysely';

/**
 * Sign-in hand-off tokens (`/session?token=`) that carried a `jti` and were accepted, so each is
 * accepted once only, on every instance. Keyed by a hash of issuer and `jti`; a row is needed
 * only until the token expires, and is then pruned.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('used_hand_offs')
    .addColumn('key_hash', 'text', (c) => c.primaryKey())
    .addColumn('used_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('used_hand_offs_by_expiry')
    .on('used_hand_offs')
    .columns(['expires_at'])
    .execute();
}
