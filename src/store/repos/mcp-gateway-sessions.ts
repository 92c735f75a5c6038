import type { Kysely } from 'kysely';
import type { Database, McpGatewaySessionRow, Millis } from '../types.js';

/** What the gateway records from a client's `initialize` request. */
export interface NewMcpGatewaySession {
  id: string;
  userId: string;
  /** Null for the aggregate `/mcp`. */
  integrationId: string | null;
  protocolVersion: string;
  /** The client's `clientInfo` and `capabilities`, stored as JSON. */
  clientInfo: unknown;
  clientCapabilities: unknown;
  upstreamSessionId: string | null;
  now: Millis;
}

/**
 * MCP gateway sessions, one row each, so that every instance can serve every request of a
 * session. A session is only ever read with its owner's user id: another user's id finds nothing.
 */
export class McpGatewaySessionRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async create(s: NewMcpGatewaySession): Promise<McpGatewaySessionRow> {
    const row: McpGatewaySessionRow = {
      id: s.id,
      user_id: s.userId,
      integration_id: s.integrationId,
      protocol_version: s.protocolVersion,
      client_info: JSON.stringify(s.clientInfo ?? {}),
      client_capabilities: JSON.stringify(s.clientCapabilities ?? {}),
      upstream_session_id: s.upstreamSessionId,
      upstream_protocol_version: null,
      created_at: s.now,
      last_seen_at: s.now,
    };
    await this.#db.insertInto('mcp_gateway_sessions').values(row).execute();
    return row;
  }

  /** The session when it exists and belongs to `userId`; undefined otherwise. */
  async findForUser(id: string, userId: string): Promise<McpGatewaySessionRow | undefined> {
    return this.#db
      .selectFrom('mcp_gateway_sessions')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  /**
   * Records the upstream session id once one exists, only when the row still holds `expected`
   * (null: none yet), so of two instances creating the upstream session at once one wins; true
   * when this call's value was stored.
   */
  async setUpstreamSessionId(
    id: string,
    value: string | null,
    expected: string | null,
    protocolVersion: string | null = null,
  ): Promise<boolean> {
    let q = this.#db
      .updateTable('mcp_gateway_sessions')
      .set({ upstream_session_id: value, upstream_protocol_version: protocolVersion })
      .where('id', '=', id);
    q =
      expected === null
        ? q.where('upstream_session_id', 'is', null)
        : q.where('upstream_session_id', '=', expected);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Notes that the session was used (for idle expiry); callers throttle it. */
  async touch(id: string, now: Millis): Promise<void> {
    await this.#db
      .updateTable('mcp_gateway_sessions')
      .set({ last_seen_at: now })
      .where('id', '=', id)
      .execute();
  }

  /** Ends the session of `userId`; true when there was one. */
  async delete(id: string, userId: string): Promise<boolean> {
    const r = await this.#db
      .deleteFrom('mcp_gateway_sessions')
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  /** Removes sessions unused since `before`; run by housekeeping. */
  async deleteIdle(before: Millis): Promise<number> {
    const r = await this.#db
      .deleteFrom('mcp_gateway_sessions')
      .where('last_seen_at', '<', before)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
