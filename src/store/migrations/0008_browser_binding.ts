import type { Kysely } from 'kysely';

/**
 * Flows bound to the browser that started them: a pending authorization records a hash derived
 * from the starting browser's session (null when started with a bearer token), and a parked
 * confirmation says why it waits (`account`: a Reconnect signed in as someone else; `connect` /
 * `reconnect`: the flow finished in a browser that did not start it) and which browser may answer.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('pending_authorizations').addColumn('browser_binding', 'text').execute();
  await db.schema
    .alterTable('pending_confirmations')
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('account'))
    .execute();
  await db.schema.alterTable('pending_confirmations').addColumn('browser_binding', 'text').execute();
}
