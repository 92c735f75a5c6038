import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mayAccess } from '../connections/access.js';
import type { ConnectionCache } from '../connections/connection-cache.js';
import type { TokenService } from '../connections/token-service.js';
import { defineRoute, documented, problem, type RouteSpec } from '../http/openapi/route-spec.js';
import { connectionNotFound, Problem, unauthenticated } from '../http/problem.js';
import type { Identity } from '../identity/identity.js';
import type { OutboundRequest } from '../oauth/outbound.js';
import { type CatalogRepository, catalogCacheMs, type IntegrationRecord } from '../store/repos/catalog.js';
import type { ConnectionRow } from '../store/types.js';
import { connectionProblem } from './connection-problem.js';
import {
  ForwardError,
  type ForwardedResponse,
  type ForwardToken,
  forward,
  refusedMethods,
  replayableBody,
} from './forwarder.js';
import { upstreamRequestHeaders } from './headers.js';
import { resolveUpstreamTarget } from './target.js';

export interface ProxyDeps {
  /** Where the connection row comes from: the row cache (one read per second for a busy connection). */
  connections: Pick<ConnectionCache, 'findForUser'>;
  catalog: CatalogRepository;
  tokens: TokenService;
  request: OutboundRequest;
  publicUrl: string;
  /** Request bodies up to this size are buffered so a 401 can be retried after a refresh. */
  maxRetryBodyBytes?: number;
}

/** The methods the proxy forwards (every one Fastify routes but TRACE, which it answers 405). */
export const proxiedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY'];
const allowHeader = proxiedMethods.join(', ');
/** RFC 6750 §3: the proxy takes a bearer token and nothing else. */
const bearerChallenge = 'Bearer realm="nunq-connect"';
const connectionId = /^[0-9a-f-]{36}$/i;

/** The proxy's two paths (with and without a rest) as the document describes them. */
function proxySpecs(url: string): { forward: RouteSpec; trace: RouteSpec } {
  const rest = url.endsWith('/*');
  const base = {
    url,
    tags: ['Proxy'],
    auth: 'bearer' as const,
  };
  return {
    forward: defineRoute({
      ...base,
      method: proxiedMethods as RouteSpec['method'],
      operationId: rest ? 'proxy' : 'proxyRoot',
      summary: rest
        ? 'Forward to the integration’s `api.baseUrl` + `{path}` with the connection’s token'
        : 'Forward to the integration’s `api.baseUrl` itself',
      description:
        'Any method but TRACE (QUERY too, which OpenAPI 3.1 cannot name). Refreshes first when the ' +
        'access token expired, and once more on a 401. Request and response bodies stream through; ' +
        'the answer is the upstream’s, with its headers filtered and a sandbox CSP. Bearer only: a ' +
        'session cookie is refused, and no answer here grants CORS.',
      responses: {
        200: { description: 'The upstream’s answer (any status, any media type)' },
        401: {
          description: 'No valid bearer token',
          problem: true,
          headers: { 'www-authenticate': 'Bearer realm="nunq-connect"' },
        },
        404: problem('connection_not_found'),
        409: problem('connection_needs_reauth or integration_disabled'),
        502: problem('upstream_error'),
      },
    }),
    trace: defineRoute({
      ...base,
      method: 'TRACE',
      operationId: rest ? 'proxyTrace' : 'proxyRootTrace',
      summary: 'TRACE is never forwarded',
      responses: { 405: problem('method_not_allowed') },
    }),
  };
}

/**
 * `ANY /api/v1/connections/:id/proxy/*`: forwards with the connection's token, streaming both
 * ways. Bearer callers only (the platform, never a browser session); TRACE answers 405.
 */
export async function registerProxyRoutes(app: FastifyInstance, d: ProxyDeps): Promise<void> {
  const maxRetryBody = d.maxRetryBodyBytes ?? 1024 * 1024;
  await app.register(async (scope) => {
    // Bodies pass through untouched as streams: no parsing, no size limit beyond the upstream's.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { bodyLimit: 1024 * 1024 * 1024 }, (_req, payload, done) =>
      done(null, payload),
    );
    // Every 401 here (no bearer, a cookie only, a bad token refused before the handler) says what to send.
    scope.addHook('onError', async (_request, reply, error) => {
      if ((error as { status?: number }).status === 401) reply.header('www-authenticate', bearerChallenge);
    });
    const handler = (request: FastifyRequest, reply: FastifyReply) => proxy(d, maxRetryBody, request, reply);
    for (const url of ['/api/v1/connections/:id/proxy/*', '/api/v1/connections/:id/proxy']) {
      const specs = proxySpecs(url);
      scope.route(documented(specs.forward, handler));
      scope.route(documented(specs.trace, refuseMethod));
    }
  });
  // The plain calls (bodyless, one bearer, a path with nothing encoded) skip Fastify's cycle.
  for (const rest of [true, false]) {
    app.fastRoutes.add<string>({
      url: rest ? '/api/v1/connections/:id/proxy/*' : '/api/v1/connections/:id/proxy',
      match: (_method, url) => fastMatch(url, rest),
      challengeHeaders: { 'www-authenticate': bearerChallenge },
      handle: ({ params, identity, request }) =>
        proxyCall(d, {
          identity,
          id: params,
          method: request.method ?? '',
          rawUrl: request.url ?? '',
          headers: request.headers,
          body: undefined,
        }),
    });
  }
}

/** `/api/v1/connections/{uuid}/proxy`, then the end, `?` or (with a rest) `/`. */
const fastUrl = /^\/api\/v1\/connections\/([0-9a-fA-F-]{36})\/proxy(?=$|[/?])/;

/**
 * The connection id when the fast route `…/proxy/*` (`rest`) or `…/proxy` takes this URL as
 * sent: one Fastify's router would send to that route with that id. Anything with a `%` before
 * the query (the router decodes it, and refuses bad encodings with its own 400) or a `#` (where
 * the router's path ends) goes to Fastify.
 */
function fastMatch(url: string, rest: boolean): string | undefined {
  const match = fastUrl.exec(url);
  if (match === null) return undefined;
  const after = url.slice(match[0].length);
  const query = after.indexOf('?');
  const path = query === -1 ? after : after.slice(0, query);
  if (path.includes('%') || path.includes('#')) return undefined;
  // find-my-way: `…/proxy` (and `…/proxy?…`) is the route without a rest; `…/proxy/…` the other.
  return path.length > 0 === rest ? match[1] : undefined;
}

/** TRACE (and CONNECT, should it ever be routed): 405 with `Allow`, before anything else happens. */
async function refuseMethod(request: FastifyRequest, reply: FastifyReply): Promise<never> {
  reply.header('allow', allowHeader);
  throw new Problem(
    405,
    'method_not_allowed',
    'Method Not Allowed',
    `The proxy does not forward ${request.method}.`,
  );
}

async function proxy(d: ProxyDeps, maxRetryBody: number, request: FastifyRequest, reply: FastifyReply) {
  if (refusedMethods.has(request.method)) return refuseMethod(request, reply);
  const identity = request.identity;
  // The platform calls with a bearer; a session cookie alone is a browser, and a browser never gets here.
  if (identity === undefined || identity.via !== 'bearer') {
    throw unauthenticated('The proxy takes an Authorization: Bearer token only.');
  }
  const method = request.method;
  const hasBody =
    method !== 'GET' && method !== 'HEAD' && request.body !== undefined && request.body !== null;
  const answer = await proxyCall(d, {
    identity,
    id: (request.params as { id: string }).id,
    method,
    rawUrl: request.raw.url ?? '',
    headers: request.headers,
    body: hasBody
      ? () => replayableBody(request.body as Readable, request.headers['content-length'], maxRetryBody)
      : undefined,
  });
  reply.code(answer.statusCode);
  reply.headers(answer.headers);
  return reply.send(answer.body);
}

/** One proxied call, as both ways in (the Fastify route and the fast route) hand it over. */
export interface ProxyCall {
  /** A bearer caller's. */
  identity: Identity;
  /** The connection id as routed (`:id`). */
  id: string;
  method: string;
  /** The request URL as sent (path and query), which the upstream path is cut from. */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  /** Reads the request body, once the connection is known to be the caller's; none for bodyless requests. */
  body: (() => Promise<Buffer | Readable>) | undefined;
}

/**
 * Forwards one call with the connection's token: the caller's connection (404 otherwise, as for
 * one that does not exist), its integration enabled and open to the caller, a path that stays
 * under the API base. Throws {@link Problem}s; the answer's headers are already filtered.
 */
export async function proxyCall(d: ProxyDeps, call: ProxyCall): Promise<ForwardedResponse> {
  const { identity, id } = call;
  const row = connectionId.test(id) ? await d.connections.findForUser(identity.userId, id) : undefined;
  if (row === undefined) throw connectionNotFound();
  const integration = await cachedIntegration(d, row.integration_id);
  // Limited to groups the caller is in none of: as if the connection did not exist.
  if (integration !== undefined && !mayAccess(integration, identity.groups)) throw connectionNotFound();
  if (integration !== undefined && !integration.enabled) {
    throw new Problem(
      409,
      'integration_disabled',
      'Conflict',
      'This integration is disabled by an administrator.',
    );
  }
  // A connection with its own API host (Salesforce instance_url, an Atlassian site) uses it, and only it.
  const baseUrl = row.api_base_url ?? integration?.settings.api?.baseUrl;
  if (baseUrl === undefined) {
    throw new Problem(409, 'conflict', 'Conflict', 'This integration has no API to proxy to.');
  }
  // What follows `/proxy` in the URL as sent; the id there must be the one routed (not encoded).
  const prefix = `/api/v1/connections/${id}/proxy`;
  if (!call.rawUrl.startsWith(prefix)) throw connectionNotFound();
  const resolved = resolveUpstreamTarget(baseUrl, call.rawUrl.slice(prefix.length));
  if (!resolved.ok) {
    throw new Problem(400, 'bad_request', 'Bad Request', 'This path cannot be proxied.', {
      reason: resolved.refusal,
    });
  }

  const method = call.method;
  const body = call.body === undefined ? undefined : await call.body();
  const headers = upstreamRequestHeaders(call.headers);
  try {
    return await forward(
      d.request,
      body === undefined
        ? { target: resolved.target, method, headers }
        : { target: resolved.target, method, headers, body },
      (rejected) => tokenFor(d, row, rejected),
    );
  } catch (error) {
    throw error instanceof ForwardError ? forwardProblem(error) : connectionProblem(error, row, d.publicUrl);
  }
}

function tokenFor(
  d: ProxyDeps,
  row: ConnectionRow,
  rejected: ForwardToken | undefined,
): Promise<ForwardToken> {
  return rejected === undefined
    ? d.tokens.tokenFor(row)
    : d.tokens.tokenFor(row, { force: true, rejectedToken: rejected.value });
}

/** What a caller is told when the upstream could not be asked or did not answer. */
function forwardProblem(error: ForwardError): Problem {
  switch (error.code) {
    case 'method_not_allowed':
      return new Problem(
        405,
        'method_not_allowed',
        'Method Not Allowed',
        'The proxy does not forward this method.',
      );
    case 'outbound_blocked':
      return new Problem(
        502,
        'upstream_error',
        'Bad Gateway',
        'The API address is refused by the outbound policy.',
      );
    case 'upstream_timeout':
      return new Problem(504, 'upstream_error', 'Gateway Timeout', 'The API did not answer in time.');
    case 'upstream_unreachable':
      return new Problem(502, 'upstream_error', 'Bad Gateway', 'The API could not be reached.');
  }
}

const integrationCache = new WeakMap<
  ProxyDeps,
  Map<string, { at: number; value: Promise<IntegrationRecord | undefined> }>
>();

/** The integration, cached for {@link catalogCacheMs} per service (an admin's change reaches every instance within that). */
function cachedIntegration(d: ProxyDeps, id: string): Promise<IntegrationRecord | undefined> {
  let cache = integrationCache.get(d);
  if (cache === undefined) {
    cache = new Map();
    integrationCache.set(d, cache);
  }
  const now = Date.now();
  const hit = cache.get(id);
  if (hit !== undefined && now - hit.at < catalogCacheMs) return hit.value;
  const value = d.catalog.getIntegration(id);
  cache.set(id, { at: now, value });
  value.catch(() => cache.delete(id));
  return value;
}
