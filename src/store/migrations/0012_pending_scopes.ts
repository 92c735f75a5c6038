import type { Kysely } from 'kysely';

/**
 * MCP servers. A pending authorization may ask for other scopes than its integration's defaults (an MCP
 * server's step-up: the scopes last granted plus the challenged ones), and may answer a
 * gateway's URL elicitation, which is marked complete when the flow succeeds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('pending_authorizations').addColumn('scopes', 'text').execute();
  await db.schema.alterTable('pending_authorizations').addColumn('elicitation_id', 'text').execute();
  // A flow parked for a click (finished in another browser) still answers its elicitation.
  await db.schema.alterTable('pending_confirmations').addColumn('elicitation_id', 'text').execute();
  // The authorization server that issued a connection's tokens: they are never sent to another
  // one (an MCP server may name a new authorization server; a provider's issuer may be edited).
  await db.schema.alterTable('connections').addColumn('issuer', 'text').execute();
  // What the last discovery of each MCP server found, for the Integrations page and the admin view.
  await db.schema
    .createTable('mcp_discovery')
    .addColumn('integration_id', 'text', (c) => c.primaryKey())
    .addColumn('ok', 'integer', (c) => c.notNull())
    .addColumn('problem', 'text')
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('checked_at', 'bigint', (c) => c.notNull())
    .execute();
}
