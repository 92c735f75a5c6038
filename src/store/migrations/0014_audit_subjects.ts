import type { Kysely } from 'kysely';

/**
 * The audit log's subjects, for the admin console's filters: the user an entry concerns (the
 * owner of the connection, or the actor when the actor is a user) and the integration. Older
 * rows keep null there (the log is append-only: no backfill); their details still name both.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('audit_log').addColumn('user_id', 'text').execute();
  await db.schema.alterTable('audit_log').addColumn('integration_id', 'text').execute();
  await db.schema.createIndex('audit_by_user').on('audit_log').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('audit_by_actor').on('audit_log').columns(['actor', 'id']).execute();
  await db.schema
    .createIndex('audit_by_integration')
    .on('audit_log')
    .columns(['integration_id', 'id'])
    .execute();
  await db.schema.createIndex('audit_by_action').on('audit_log').columns(['action', 'id']).execute();
  await db.schema.createIndex('audit_by_time').on('audit_log').columns(['at']).execute();
}
