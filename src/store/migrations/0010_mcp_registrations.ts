import type { Kysely } from 'kysely';

/**
 * Clients registered dynamically (RFC 7591) at the authorization servers of MCP servers: one per
 * issuer and redirect URI, shared by all users and instances. The registration response (client
 * secret, registration access token) is kept whole and sealed; `client_id` stays in clear so a
 * stale registration can be dropped only while it is still the stored one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mcp_registrations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('registration_sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addUniqueConstraint('mcp_registrations_issuer_redirect_unique', ['issuer', 'redirect_uri'])
    .execute();
}
