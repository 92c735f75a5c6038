import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, McpElicitationRow, Millis } from '../types.js';

/** How long an elicitation link stays usable. */
export const elicitationTtlMs = 15 * 60 * 1000;

export interface NewMcpElicitation {
  userId: string;
  integrationId: string;
  /** The gateway session that asked, or null. */
  sessionId: string | null;
  /** Scopes to ask for (step-up: granted ∪ challenged); null for the integration's defaults. */
  scopes: readonly string[] | null;
  now: Millis;
}

/**
 * The opaque links of MCP URL elicitation (`{publicUrl}/connect/<integration>?elicitation=<id>`):
 * the id carries nothing, the row says whose link it is, for which integration and scopes. The
 * Connect flow marks it complete; the gateway learns completions of its sessions by polling.
 */
export class McpElicitationRepository {
  readonly #db: Kysely<Database>;
  readonly #randomId: () => string;
  constructor(db: Kysely<Database>, options: { randomId?: () => string } = {}) {
    this.#db = db;
    this.#randomId = options.randomId ?? (() => randomBytes(32).toString('base64url'));
  }

  async create(e: NewMcpElicitation): Promise<McpElicitationRow> {
    const row: McpElicitationRow = {
      id: this.#randomId(),
      user_id: e.userId,
      integration_id: e.integrationId,
      session_id: e.sessionId,
      scopes: e.scopes === null ? null : JSON.stringify([...e.scopes]),
      status: 'pending',
      created_at: e.now,
      expires_at: e.now + elicitationTtlMs,
      completed_at: null,
    };
    await this.#db.insertInto('mcp_elicitations').values(row).execute();
    return row;
  }

  /** The link when it belongs to `userId` and has not expired; undefined otherwise (another user's: undefined). */
  async findForUser(
    id: string,
    userId: string,
    now: Millis = Date.now(),
  ): Promise<McpElicitationRow | undefined> {
    return this.#db
      .selectFrom('mcp_elicitations')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  }

  /** Marks the link's flow as succeeded; true when it was pending. */
  async markComplete(id: string, now: Millis = Date.now()): Promise<boolean> {
    const r = await this.#db
      .updateTable('mcp_elicitations')
      .set({ status: 'complete', completed_at: now })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The newest link of a session for an integration that is still pending and unexpired (reused, not minted again). */
  async findPending(
    sessionId: string,
    integrationId: string,
    now: Millis,
  ): Promise<McpElicitationRow | undefined> {
    return this.#db
      .selectFrom('mcp_elicitations')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('integration_id', '=', integrationId)
      .where('status', '=', 'pending')
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  /** How many links a session created for an integration since `since` (the attempt limit). */
  async countRecent(sessionId: string, integrationId: string, since: Millis): Promise<number> {
    const row = await this.#db
      .selectFrom('mcp_elicitations')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('session_id', '=', sessionId)
      .where('integration_id', '=', integrationId)
      .where('created_at', '>=', since)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Links of the given sessions completed after `since` (oldest first): how the gateway learns,
   * on any instance, that a user finished the flow a session's client is waiting for.
   */
  async completedSince(sessionIds: readonly string[], since: Millis): Promise<McpElicitationRow[]> {
    if (sessionIds.length === 0) return [];
    return this.#db
      .selectFrom('mcp_elicitations')
      .selectAll()
      .where('session_id', 'in', [...sessionIds])
      .where('status', '=', 'complete')
      .where('completed_at', '>', since)
      .orderBy('completed_at')
      .execute();
  }

  /** Removes links expired before `before`; run by housekeeping. */
  async deleteExpired(before: Millis): Promise<number> {
    const r = await this.#db
      .deleteFrom('mcp_elicitations')
      .where('expires_at', '<', before)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

/** The scopes a link asks for, or null for the integration's defaults. */
export function elicitationScopes(row: Pick<McpElicitationRow, 'scopes'>): string[] | null {
  if (row.scopes === null) return null;
  const parsed: unknown = JSON.parse(row.scopes);
  return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string') : null;
}
