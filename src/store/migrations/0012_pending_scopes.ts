import type { Kysely } from 'kysely';

/**
 * A pending authorization may ask for other scopes than its integration's defaults (an MCP
 * server's step-up: the scopes last granted plus the challenged ones), and may answer a
 * gateway's URL elicitation, which is marked complete when the flow succeeds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('pending_authorizations').addColumn('scopes', 'text').execute();
  await db.schema.alterTable('pending_authorizations').addColumn('elicitation_id', 'text').execute();
}
