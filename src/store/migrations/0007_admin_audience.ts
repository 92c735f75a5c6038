import { type Kysely, sql } from 'kysely';

/**
 * Moves the administrators' notifications from the audience `@admins`, which a user id could
 * take, to `#admins`, which none can (`userIdPattern` has no `#`). Only the administrator
 * notification type moves: a real user named `@admins` keeps their own. Their feed events are
 * dropped, since nobody streams the admin audience and a user `@admins` must not replay them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update notifications set user_id = '#admins'
    where user_id = '@admins' and type = 'provider.config_error'`.execute(db);
  await sql`delete from events
    where user_id = '@admins' and type = 'notification' and data like '%"type":"provider.config_error"%'`.execute(
    db,
  );
}
