/**
 * The MCP server of an integration, spoken to at the HTTP level with the user's token, through
 * the proxy's forwarder (one forced refresh and one retry after a 401). Also opens an upstream
 * session on a client's behalf, replaying its `initialize` (when the client initialized before
 * the user had connected the server).
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  LATEST_PROTOCOL_VERSION,
} from '@modelcontextprotocol/sdk/types.js';
import type { TokenService } from '../../connections/token-service.js';
import type { OutboundRequest } from '../../oauth/outbound.js';
import type { ConnectionRow } from '../../store/types.js';
import { type ForwardedResponse, type ForwardToken, forward } from '../forwarder.js';
import { upstreamRequestHeaders } from '../headers.js';
import type { UpstreamTarget } from '../target.js';
import { sessionHeader } from './answers.js';
import { insufficientScope } from './challenge.js';
import type { ClientHello } from './sessions.js';
import { SseParser } from './sse.js';

export interface UpstreamDeps {
  request: OutboundRequest;
  tokens: TokenService;
}

const targets = new Map<string, Readonly<UpstreamTarget>>();

/**
 * The forwarder's target for an MCP server URL (query kept, fragment dropped). Remembered per
 * URL (bounded): parsing two URLs per call showed in the gateway's profile.
 */
export function upstreamTarget(url: string): UpstreamTarget {
  let target = targets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = Object.freeze({ origin: new URL(parsed.origin), path: `${parsed.pathname}${parsed.search}` });
    if (targets.size >= 1_000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

/**
 * An MCP answer may take as long as its tool runs, and an event stream may stay quiet for long:
 * the head may take minutes, and the body has no idle limit (the client's connection bounds it,
 * and our keep-alives find a client that is gone).
 */
const mcpTimeouts = { headersMs: 5 * 60_000, bodyIdleMs: 0 };

/** Sends one request to the server with the connection's token (retried once after a 401). */
export function sendUpstream(
  d: UpstreamDeps,
  row: ConnectionRow,
  target: UpstreamTarget,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<ForwardedResponse> {
  return forward(
    (t, options) => d.request(t, { ...options, timeouts: mcpTimeouts }),
    body === undefined ? { target, method, headers } : { target, method, headers, body },
    (rejected?: ForwardToken) =>
      rejected === undefined
        ? d.tokens.tokenFor(row)
        : d.tokens.tokenFor(row, { force: true, rejectedToken: rejected.value }),
  );
}

/** The server refused the user's token after a refresh (401), or asked for more scopes (403). */
export class UpstreamRefusal extends Error {
  constructor(
    readonly kind: 'unauthorized' | 'insufficient_scope',
    readonly scopes: string[] = [],
  ) {
    super(`upstream refused: ${kind}`);
  }
}

/** The server could not open a session (an error answer, a malformed one, or none). */
export class UpstreamSessionError extends Error {
  readonly code = 'upstream_session_failed';
}

/**
 * What a final 401 or 403 answer means for the user, or undefined for any other status. The
 * body is drained when it does mean something.
 */
export async function refusalOf(answer: ForwardedResponse): Promise<UpstreamRefusal | undefined> {
  if (answer.statusCode === 401) {
    answer.body?.resume();
    return new UpstreamRefusal('unauthorized');
  }
  if (answer.statusCode !== 403) return undefined;
  const challenge = await insufficientScope(answer.headers['www-authenticate']);
  if (challenge === undefined) return undefined;
  answer.body?.resume();
  return new UpstreamRefusal('insufficient_scope', challenge.scopes);
}

const maxInitializeAnswerBytes = 1024 * 1024;

/**
 * Opens an upstream session for a client that initialized with us: replays its `initialize`
 * and `notifications/initialized`. Returns the server's `Mcp-Session-Id` (`''` when it issues
 * none). @see MCP 2025-11-25, Basic / Lifecycle §Initialization
 */
export async function openUpstreamSession(
  d: UpstreamDeps,
  row: ConnectionRow,
  target: UpstreamTarget,
  hello: ClientHello,
): Promise<{ sessionId: string; protocolVersion: string }> {
  const id = `nunq-init-${randomBytes(6).toString('hex')}`;
  const initialize = {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: hello.protocolVersion,
      capabilities: hello.capabilities,
      clientInfo: hello.clientInfo,
    },
  };
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  const answer = await sendUpstream(
    d,
    row,
    target,
    'POST',
    { ...headers },
    Buffer.from(JSON.stringify(initialize)),
  );
  const refusal = await refusalOf(answer);
  if (refusal !== undefined) throw refusal;
  if (answer.statusCode !== 200 || answer.body === undefined) {
    answer.body?.resume();
    throw new UpstreamSessionError(`initialize answered HTTP ${answer.statusCode}`);
  }
  const sessionId = answer.headers['mcp-session-id'] ?? '';
  const result = await readResponse(answer, id);
  const version =
    typeof result.protocolVersion === 'string' ? result.protocolVersion : LATEST_PROTOCOL_VERSION;
  const initialized = await sendUpstream(
    d,
    row,
    target,
    'POST',
    {
      ...headers,
      'mcp-protocol-version': version,
      ...(sessionId === '' ? {} : { 'mcp-session-id': sessionId }),
    },
    Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })),
  );
  initialized.body?.resume();
  if (initialized.statusCode >= 300) {
    throw new UpstreamSessionError(`notifications/initialized answered HTTP ${initialized.statusCode}`);
  }
  return { sessionId, protocolVersion: version };
}

/** Reads the JSON-RPC result for request `id` from a JSON or SSE answer (bounded). */
async function readResponse(answer: ForwardedResponse, id: string): Promise<Record<string, unknown>> {
  const body = answer.body as Readable;
  const sse = (answer.headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
  let found: unknown;
  let size = 0;
  const chunks: Buffer[] = [];
  const parser = new SseParser((event) => {
    try {
      const message: unknown = JSON.parse(event.data);
      if ((message as { id?: unknown }).id === id) found = message;
    } catch {
      // Not JSON: not the answer.
    }
  });
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxInitializeAnswerBytes) throw new UpstreamSessionError('initialize answer too large');
      if (sse) {
        parser.feed(chunk as Buffer);
        if (found !== undefined) break;
      } else chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof UpstreamSessionError) throw error;
    throw new UpstreamSessionError('initialize answer was cut off');
  } finally {
    body.destroy();
  }
  if (!sse) {
    try {
      found = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new UpstreamSessionError('initialize answer is not JSON');
    }
  }
  if (isJSONRPCResultResponse(found)) return found.result as Record<string, unknown>;
  if (isJSONRPCErrorResponse(found)) throw new UpstreamSessionError('initialize answered with an error');
  throw new UpstreamSessionError('initialize answered no result');
}

/**
 * The headers sent upstream: the caller's minus credentials and hop-by-hop ones, with the
 * upstream session id, and the protocol version the upstream negotiated when we opened its
 * session (the client negotiated its own with us).
 */
export function upstreamHeaders(
  from: Record<string, string | string[] | undefined>,
  upstreamSessionId: string | null,
  upstreamProtocolVersion: string | null = null,
): Record<string, string> {
  const headers = upstreamRequestHeaders(from);
  delete headers[sessionHeader];
  // Bytes are relayed and read as they come: no compressed streams.
  headers['accept-encoding'] = 'identity';
  if (upstreamSessionId !== null && upstreamSessionId !== '') headers[sessionHeader] = upstreamSessionId;
  if (upstreamProtocolVersion !== null) headers['mcp-protocol-version'] = upstreamProtocolVersion;
  return headers;
}
