import type { Kysely } from 'kysely';

/**
 * The MCP gateway's shared state, so any instance can serve any request of a session:
 * `mcp_gateway_sessions`, one row per gateway session (the client's `initialize` and the
 * upstream session it maps to), and `mcp_elicitations`, the opaque "connect this server" links
 * the gateway hands to a client when the user must act (URL elicitation, MCP -32042).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mcp_gateway_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    // Null for the aggregate endpoint `/mcp`.
    .addColumn('integration_id', 'text')
    .addColumn('protocol_version', 'text', (c) => c.notNull())
    .addColumn('client_info', 'text', (c) => c.notNull())
    .addColumn('client_capabilities', 'text', (c) => c.notNull())
    .addColumn('upstream_session_id', 'text')
    // The protocol version the upstream negotiated when the gateway opened its session (replayed initialize).
    .addColumn('upstream_protocol_version', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('mcp_gateway_sessions_by_last_seen')
    .on('mcp_gateway_sessions')
    .columns(['last_seen_at'])
    .execute();

  await db.schema
    .createTable('mcp_elicitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('integration_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text')
    // JSON array of scopes to ask for (step-up), or null for the integration's defaults.
    .addColumn('scopes', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('completed_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('mcp_elicitations_by_session')
    .on('mcp_elicitations')
    .columns(['session_id', 'integration_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('mcp_elicitations_by_completion')
    .on('mcp_elicitations')
    .columns(['completed_at'])
    .execute();
  await db.schema
    .createIndex('mcp_elicitations_by_expiry')
    .on('mcp_elicitations')
    .columns(['expires_at'])
    .execute();
}
