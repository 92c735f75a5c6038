import { randomBytes } from 'node:crypto';
import type { McpGatewaySessionRepository } from '../../store/repos/mcp-gateway-sessions.js';
import type { McpGatewaySessionRow } from '../../store/types.js';
import type { Clock } from '../../support/clock.js';

/** What the gateway keeps of a client's `initialize`, to answer for it and replay it upstream. */
export interface ClientHello {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown>;
}

/** A gateway session as the gateway uses it. */
export interface GatewaySession {
  id: string;
  userId: string;
  integrationId: string | null;
  hello: ClientHello;
  /**
   * The upstream's `Mcp-Session-Id`: null while no upstream session exists, `''` when one exists
   * but the server issued no id (a stateless server).
   */
  upstreamSessionId: string | null;
  /** The version the upstream negotiated when we opened its session for the client; null when the client did. */
  upstreamProtocolVersion: string | null;
}

/** Whether the client declared URL-mode elicitation (`capabilities.elicitation.url`, MCP 2025-11-25). */
export function acceptsUrlElicitation(session: GatewaySession): boolean {
  const elicitation = session.hello.capabilities.elicitation;
  return typeof elicitation === 'object' && elicitation !== null && 'url' in elicitation;
}

/** How long a session row read serves from memory (another instance may set its upstream id). */
const cacheMs = 5_000;
const maxCached = 10_000;
/** `last_seen_at` is written at most this often per session. */
const touchEveryMs = 60_000;

/**
 * Gateway sessions: rows in `mcp_gateway_sessions` with a small per-instance cache in front.
 * Nothing here is needed by another instance: every instance can serve any session from its row.
 */
export class GatewaySessions {
  readonly #repo: McpGatewaySessionRepository;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { at: number; session: GatewaySession; touched: number }>();

  constructor(repo: McpGatewaySessionRepository, clock: Clock) {
    this.#repo = repo;
    this.#clock = clock;
  }

  /** Records a new session for an `initialize`; the id is random and opaque. */
  async create(
    userId: string,
    integrationId: string | null,
    hello: ClientHello,
    upstreamSessionId: string | null,
  ): Promise<GatewaySession> {
    const id = randomBytes(24).toString('base64url');
    const now = this.#clock.now();
    await this.#repo.create({
      id,
      userId,
      integrationId,
      protocolVersion: hello.protocolVersion,
      clientInfo: hello.clientInfo,
      clientCapabilities: hello.capabilities,
      upstreamSessionId,
      now,
    });
    const session = { id, userId, integrationId, hello, upstreamSessionId, upstreamProtocolVersion: null };
    this.#remember(session, now);
    return session;
  }

  /** The session when it is `userId`'s and belongs to this endpoint; undefined otherwise. */
  async find(id: string, userId: string, integrationId: string | null): Promise<GatewaySession | undefined> {
    const now = this.#clock.now();
    const hit = this.#cache.get(id);
    let session: GatewaySession | undefined;
    if (hit !== undefined && now - hit.at < cacheMs) session = hit.session;
    else {
      const row = await this.#repo.findForUser(id, userId);
      if (row !== undefined) {
        session = toSession(row);
        this.#remember(session, now, hit?.touched ?? row.last_seen_at);
      } else this.#cache.delete(id);
    }
    if (session === undefined || session.userId !== userId || session.integrationId !== integrationId) {
      return undefined;
    }
    const entry = this.#cache.get(id);
    if (entry !== undefined && now - entry.touched >= touchEveryMs) {
      entry.touched = now;
      await this.#repo.touch(id, now);
    }
    return session;
  }

  /**
   * Records the upstream session once created; when another instance got there first, the
   * session it recorded (whose id the caller should use instead).
   */
  async setUpstream(
    session: GatewaySession,
    upstream: { sessionId: string; protocolVersion: string },
    replacing: string | null,
  ): Promise<GatewaySession> {
    const stored = await this.#repo.setUpstreamSessionId(
      session.id,
      upstream.sessionId,
      replacing,
      upstream.protocolVersion,
    );
    this.#cache.delete(session.id);
    const mine = {
      ...session,
      upstreamSessionId: upstream.sessionId,
      upstreamProtocolVersion: upstream.protocolVersion,
    };
    if (stored) {
      this.#remember(mine, this.#clock.now());
      return mine;
    }
    const row = await this.#repo.findForUser(session.id, session.userId);
    return row === undefined ? mine : toSession(row);
  }

  /** Ends the session; true when it existed. */
  async delete(session: GatewaySession): Promise<boolean> {
    this.#cache.delete(session.id);
    return this.#repo.delete(session.id, session.userId);
  }

  #remember(session: GatewaySession, now: number, touched = now): void {
    if (this.#cache.size >= maxCached) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(session.id, { at: now, session, touched });
  }
}

function toSession(row: McpGatewaySessionRow): GatewaySession {
  return {
    id: row.id,
    userId: row.user_id,
    integrationId: row.integration_id,
    hello: {
      protocolVersion: row.protocol_version,
      capabilities: objectOf(row.client_capabilities),
      clientInfo: objectOf(row.client_info),
    },
    upstreamSessionId: row.upstream_session_id,
    upstreamProtocolVersion: row.upstream_protocol_version,
  };
}

function objectOf(json: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}
