/**
 * One call of the aggregate `/mcp` routed to its server (routed-calls.ts): who asked, where it
 * goes, the upstream session it travels in, and what is done with it on the way: a message sent
 * in that session, the server told that the agent cancelled, the server's answer given back the
 * agent's id.
 */

import type { Logger } from '../../observability/logger.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { ConnectionRow } from '../../store/types.js';
import type { ForwardedResponse } from '../forwarder.js';
import type { UpstreamTarget } from '../target.js';
import type { AgentCalls, RunningCall } from './agent-calls.js';
import { reasonOf } from './answers.js';
import type { ConnectionLookup } from './connection-lookup.js';
import type { McpIntegrations } from './integrations.js';
import type { JSONRPCRequest, RequestId } from './jsonrpc.js';
import { drain } from './routed-answers.js';
import type { GatewaySession } from './sessions.js';
import { sendUpstream, type UpstreamDeps } from './upstream.js';
import type { UpstreamClients } from './upstream-clients.js';
import type { UserActions } from './user-action.js';

export interface RoutedCallsDeps extends UpstreamDeps {
  connections: ConnectionLookup;
  integrations: McpIntegrations;
  clients: UpstreamClients;
  actions: UserActions;
  calls: AgentCalls;
  logger: Logger;
}

/** One call on its way: who asked, where it goes, and how to reach the upstream session. */
export interface Call {
  session: GatewaySession;
  request: JSONRPCRequest;
  integration: IntegrationRecord;
  /** `<integration>__`: what the server's own names and URIs get in front on the way back. */
  prefix: string;
  row: ConnectionRow;
  target: UpstreamTarget;
  /** The upstream session's headers (id, negotiated version). */
  sessionHeaders: Record<string, string>;
  upstreamId: string;
  /** The agent's call: cancelled when the agent cancels it. */
  running: RunningCall;
  /** `running.signal`. */
  readonly signal: AbortSignal;
}

/** Sends one message in the call's upstream session, with the user's token (upstream.ts). */
export function sendOnCall(deps: UpstreamDeps, call: Call, body: Buffer): Promise<ForwardedResponse> {
  return sendUpstream(
    deps,
    call.row,
    call.target,
    'POST',
    {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'accept-encoding': 'identity',
      ...call.sessionHeaders,
    },
    body,
  );
}

/** Tells the server the agent cancelled the call. @see MCP 2025-11-25, Utilities / Cancellation */
export function cancelUpstream(deps: UpstreamDeps & { logger: Logger }, call: Call): void {
  const notification = {
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: call.upstreamId, reason: 'The agent cancelled the request.' },
  };
  sendOnCall(deps, call, Buffer.from(JSON.stringify(notification))).then(drain, (error: unknown) =>
    deps.logger.info(
      { integration: call.integration.id, reason: reasonOf(error) },
      'mcp gateway: a cancellation was not passed on',
    ),
  );
}

/** The server's answer with the agent's id; a resource's URIs get the integration's prefix again. */
export function answerForAgent(call: Call, message: { id?: RequestId; result?: unknown; error?: unknown }) {
  const out = { ...message, id: call.request.id };
  const contents = (message.result as { contents?: unknown } | undefined)?.contents;
  if (call.request.method === 'resources/read' && Array.isArray(contents)) {
    out.result = {
      ...(message.result as object),
      contents: contents.map((c: { uri?: unknown }) =>
        typeof c?.uri === 'string' ? { ...c, uri: `${call.prefix}${c.uri}` } : c,
      ),
    };
  }
  return out;
}
