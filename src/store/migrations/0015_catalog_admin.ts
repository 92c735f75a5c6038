import type { Kysely } from 'kysely';

/**
 * The run-time catalog: when a provider's or MCP server's client secret was last set (shown to
 * admins instead of the secret), and the groups a browser session's user had at sign-in (an
 * integration may be limited to some groups).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('providers').addColumn('client_secret_changed_at', 'bigint').execute();
  await db.schema.alterTable('integrations').addColumn('client_secret_changed_at', 'bigint').execute();
  await db.schema.alterTable('sessions').addColumn('groups', 'text').execute();
}
