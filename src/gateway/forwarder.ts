/**
 * The proxy's forwarder: sends one request upstream with a connection's token, retries once
 * with a refreshed token after a 401 when the body allows it, and hands back the answer with
 * the caller-safe headers. No Fastify here: the HTTP proxy and the MCP gateway both use it.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { isOutboundBlocked } from '../oauth/errors.js';
import type { OutboundRequest } from '../oauth/outbound.js';
import { callerResponseHeaders } from './headers.js';
import type { UpstreamTarget } from './target.js';

/** Why a forward failed on the way (token failures pass through as the token service's own errors). */
export type ForwardFailure =
  | 'method_not_allowed'
  | 'outbound_blocked'
  | 'upstream_timeout'
  | 'upstream_unreachable';

/** A forward that could not reach an answer; `code` says how to report it. */
export class ForwardError extends Error {
  constructor(readonly code: ForwardFailure) {
    super(`forward failed: ${code}`);
  }
}

/**
 * Methods never forwarded: TRACE (and TRACK) echo the request, our injected token included,
 * back to the caller (RFC 9110 §9.3.8); CONNECT asks for a tunnel, not a resource.
 */
export const refusedMethods: ReadonlySet<string> = new Set(['TRACE', 'TRACK', 'CONNECT']);

/** The token to send, as the token service hands it out. */
export interface ForwardToken {
  value: string;
  /** The `Authorization` header value (`Bearer …`). */
  authorization: string;
}

/** Gets the connection's token; with `rejected`, one newer than the token the upstream refused. */
export type TokenSource = (rejected?: ForwardToken) => Promise<ForwardToken>;

export interface ForwardRequest {
  target: UpstreamTarget;
  method: string;
  /** Already filtered by `upstreamRequestHeaders`; the token is added here. */
  headers: Record<string, string>;
  /** A Buffer can be sent twice (retry after a 401); a stream only once. */
  body?: Buffer | Readable;
}

export interface ForwardedResponse {
  statusCode: number;
  /** Filtered by `callerResponseHeaders`. */
  headers: Record<string, string>;
  /** Undefined when the status has no body by definition (204, 304). */
  body: Readable | undefined;
}

/**
 * Forwards `request` with the connection's token; on a 401 with a replayable body, once more
 * with a refreshed token. The answer's body is passed undecoded, so its content-encoding
 * still describes it.
 */
export async function forward(
  send: OutboundRequest,
  request: ForwardRequest,
  tokenFor: TokenSource,
): Promise<ForwardedResponse> {
  if (refusedMethods.has(request.method)) throw new ForwardError('method_not_allowed');
  const { headers, body, method, target } = request;
  const options = body === undefined ? { method, headers } : { method, headers, body };
  let token = await tokenFor();
  headers.authorization = token.authorization;
  let upstream = await sendOrFail(send, target, options);
  if (upstream.statusCode === 401 && !(body instanceof Readable)) {
    const refused = upstream;
    const fresh = await tokenFor(token).catch((error: unknown) => {
      refused.body.dump().catch(() => {});
      throw error;
    });
    // The same token again (nothing to refresh with, and it has not expired): the 401 is the
    // API's answer to this caller, not a stale token; asking again would only repeat it.
    if (fresh.authorization !== token.authorization) {
      await refused.body.dump();
      token = fresh;
      headers.authorization = token.authorization;
      upstream = await sendOrFail(send, target, options);
    }
  }
  const answer = callerResponseHeaders(upstream.headers);
  if (upstream.statusCode === 204 || upstream.statusCode === 304) {
    // No body by definition (RFC 9110 §15.3.5, §15.4.5): a Content-Length there describes the
    // representation, and undici would fail the empty body against it.
    upstream.body.dump().catch(() => {});
    delete answer['content-length'];
    return { statusCode: upstream.statusCode, headers: answer, body: undefined };
  }
  return { statusCode: upstream.statusCode, headers: answer, body: upstream.body };
}

/**
 * The request body in a form that can be sent twice when it is small (a known length up to
 * `maxBytes`), so a 401 can be retried; larger or unknown-length bodies stream through once.
 */
export async function replayableBody(
  stream: Readable,
  contentLength: string | undefined,
  maxBytes: number,
): Promise<Buffer | Readable> {
  const length = contentLength === undefined ? Number.NaN : Number(contentLength);
  if (!Number.isFinite(length) || length > maxBytes) return stream;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function sendOrFail(
  send: OutboundRequest,
  target: UpstreamTarget,
  options: Parameters<OutboundRequest>[1],
): Promise<Dispatcher.ResponseData> {
  try {
    return await send(target, options);
  } catch (error) {
    if (isOutboundBlocked(error)) throw new ForwardError('outbound_blocked');
    const code = (error as { code?: string }).code ?? '';
    const timedOut =
      (error as { name?: string }).name === 'TimeoutError' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT';
    throw new ForwardError(timedOut ? 'upstream_timeout' : 'upstream_unreachable');
  }
}
