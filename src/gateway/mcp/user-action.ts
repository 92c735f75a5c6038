/**
 * When the user must act before a request can go on (the server is not connected, its
 * connection needs reconnecting, or it asked for more scopes): the answers the gateway gives,
 * per JSON-RPC request, and the opaque Connect link they carry. A client that declared URL
 * elicitation gets MCP's `URLElicitationRequiredError` (-32042); any other gets a tool result
 * with `isError: true` naming the integration and the link (and an empty `tools/list`).
 * @see MCP 2025-11-25, Client Features / Elicitation §URL mode
 */
import { ErrorCode, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import type { McpElicitationRepository } from '../../store/repos/mcp-elicitations.js';
import type { Clock } from '../../support/clock.js';
import { errorResponse, type JSONRPCRequest, resultResponse } from './jsonrpc.js';
import { acceptsUrlElicitation, type GatewaySession } from './sessions.js';

/** Why the user must act. For `insufficient_scope`, the scopes to ask for: granted ∪ challenged. */
export type UserActionReason =
  | { kind: 'not_connected' }
  | { kind: 'needs_reauth' }
  | { kind: 'insufficient_scope'; scopes: string[] };

/** Authorization attempts (links minted) allowed per session and integration within `attemptWindowMs`. */
export const maxAttempts = 3;
export const attemptWindowMs = 15 * 60 * 1000;

/** The JSON-RPC error code of "the user must act, here is how", for methods without a friendlier answer. */
export const userActionErrorCode = -32000;

export interface UserActionDeps {
  elicitations: McpElicitationRepository;
  clock: Clock;
  publicUrl: string;
}

export interface IntegrationRef {
  id: string;
  name: string;
}

type Answer = ReturnType<typeof errorResponse> | ReturnType<typeof resultResponse>;

/** Builds the answers for requests that cannot go on until the user acts. */
export class UserActions {
  readonly #d: UserActionDeps;
  constructor(deps: UserActionDeps) {
    this.#d = deps;
  }

  /** One answer per request (notifications and responses get none). */
  async answer(
    session: GatewaySession,
    integration: IntegrationRef,
    reason: UserActionReason,
    requests: readonly JSONRPCRequest[],
  ): Promise<Answer[]> {
    const elicit = acceptsUrlElicitation(session);
    const needsLink = requests.some((r) => elicit || (r.method !== 'tools/list' && r.method !== 'ping'));
    const link = needsLink ? await this.#link(session, integration, reason) : undefined;
    const message = messageFor(integration, reason);
    return requests.map((r) => {
      if (r.method === 'ping') return resultResponse(r.id, {});
      if (link === undefined) {
        if (r.method === 'tools/list') return resultResponse(r.id, { tools: [] });
        return errorResponse(r.id, tooManyAttempts(integration));
      }
      if (link === 'exhausted') return errorResponse(r.id, tooManyAttempts(integration));
      if (elicit) {
        const error = new UrlElicitationRequiredError(
          [{ mode: 'url', elicitationId: link.id, url: link.url, message }],
          `${message} Open the link to continue.`,
        );
        return errorResponse(r.id, { code: error.code, message: error.message, data: error.data });
      }
      const text = `${message} Open ${link.url} to continue, then try again.`;
      if (r.method === 'tools/call') {
        return resultResponse(r.id, { content: [{ type: 'text', text }], isError: true });
      }
      if (r.method === 'tools/list') return resultResponse(r.id, { tools: [] });
      return errorResponse(r.id, { code: userActionErrorCode, message: text });
    });
  }

  /**
   * The Connect link for this session: the pending one when there is one, else a new one, unless
   * `maxAttempts` were minted within the window (then `exhausted`: the chain stops asking).
   */
  async #link(
    session: GatewaySession,
    integration: IntegrationRef,
    reason: UserActionReason,
  ): Promise<{ id: string; url: string } | 'exhausted'> {
    const now = this.#d.clock.now();
    const scopes = reason.kind === 'insufficient_scope' ? reason.scopes : null;
    const pending = await this.#d.elicitations.findPending(session.id, integration.id, now);
    if (pending !== undefined && pending.scopes === (scopes === null ? null : JSON.stringify(scopes))) {
      return { id: pending.id, url: this.#url(integration.id, pending.id) };
    }
    const recent = await this.#d.elicitations.countRecent(session.id, integration.id, now - attemptWindowMs);
    if (recent >= maxAttempts) return 'exhausted';
    const row = await this.#d.elicitations.create({
      userId: session.userId,
      integrationId: integration.id,
      sessionId: session.id,
      scopes,
      now,
    });
    return { id: row.id, url: this.#url(integration.id, row.id) };
  }

  #url(integrationId: string, elicitationId: string): string {
    return `${this.#d.publicUrl}/connect/${encodeURIComponent(integrationId)}?elicitation=${elicitationId}`;
  }
}

function messageFor(integration: IntegrationRef, reason: UserActionReason): string {
  switch (reason.kind) {
    case 'not_connected':
      return `${integration.name} is not connected: connect your account to let the agent use it.`;
    case 'needs_reauth':
      return `Your connection to ${integration.name} must be renewed: reconnect it to let the agent use it.`;
    case 'insufficient_scope':
      return `${integration.name} needs more permissions for this: reconnect it to grant them.`;
  }
}

function tooManyAttempts(integration: IntegrationRef) {
  return {
    code: ErrorCode.InvalidRequest,
    message: `${integration.name} was not authorized after ${maxAttempts} attempts; connect it on the Integrations page, then try again.`,
  };
}

/** Scopes for a step-up: the connection's granted scopes plus the challenged ones, in order, once each. */
export function stepUpScopes(granted: readonly string[], challenged: readonly string[]): string[] {
  return [...new Set([...granted, ...challenged])];
}
