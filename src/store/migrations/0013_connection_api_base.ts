import type { Kysely } from 'kysely';

/**
 * A connection's own API base URL, for providers whose API host differs per account (Salesforce
 * `instance_url`, an Atlassian site): learnt at Connect, used by the proxy instead of the
 * integration's `api.baseUrl`. Null for every other connection.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').addColumn('api_base_url', 'text').execute();
}
