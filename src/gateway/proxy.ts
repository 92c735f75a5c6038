import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { ConnectionCache } from '../connections/connection-cache.js';
import type { TokenService, UsableToken } from '../connections/token-service.js';
import { requireUser } from '../http/auth.js';
import { connectionNotFound, Problem } from '../http/problem.js';
import { hasControlOrBackslash } from '../http/return-to.js';
import { isOutboundBlocked } from '../oauth/errors.js';
import type { OutboundRequest } from '../oauth/outbound.js';
import type { CatalogRepository, IntegrationRecord } from '../store/repos/catalog.js';
import { connectionProblem } from './connection-problem.js';

/**
 * Headers never forwarded in either direction (RFC 9110 §7.6.1), plus the caller's credentials.
 * Content-Length is kept: bodies pass through undecoded, so it stays exact (and an upstream that
 * refuses chunked uploads gets its length).
 */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);
const requestOnlyDrop = new Set([
  'authorization',
  'cookie',
  'x-csrf-token',
  'origin',
  'referer',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  // Path overrides some servers and gateways honour (IIS URL Rewrite, Symfony): the path is ours to set.
  'x-original-url',
  'x-rewrite-url',
  // undici refuses it, and Node has already answered `100 Continue` to the caller.
  'expect',
]);
const responseOnlyDrop = new Set(['set-cookie', 'set-cookie2']);

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

/** Where a proxied request goes: the integration's API origin and the path (with query) under its base path. */
export interface UpstreamTarget {
  origin: URL;
  path: string;
}

/**
 * Resolves the upstream target for a proxied path: the integration's `api.baseUrl` joined with
 * the caller's path and query, refusing anything that could leave it (absolute URLs, `..`
 * segments, raw or percent-encoded, backslashes, control characters, `@` tricks). The path is
 * then sent as the caller wrote it, never re-normalised; redirects are never followed.
 */
export function upstreamTarget(baseUrl: string, rawRest: string): UpstreamTarget {
  const refuse = () => new Problem(400, 'bad_request', 'Bad Request', 'This path cannot be proxied.');
  const hash = rawRest.indexOf('#');
  const rest = hash === -1 ? rawRest : rawRest.slice(0, hash);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  if (hasControlOrBackslash(rest) || outsideRequestTarget.test(rest)) throw refuse();
  // Judge the path as an upstream server might decode it: %2f is a slash, %2e a dot and %3b a
  // `;` there. Encodings that only a second decoding or a lax UTF-8 decoder would turn into those
  // (`%252e`, overlong `%c0%ae`) are refused outright.
  const decoded = path.includes('%')
    ? path
        .replace(/%2f/gi, '/')
        .replace(/%2e/gi, '.')
        .replace(/%40/g, '@')
        .replace(/%3a/gi, ':')
        .replace(/%3b/gi, ';')
    : path;
  if (/%5c|%25(2e|2f|5c|3b)|%c[01]/i.test(path) || /%(00|0a|0d)/i.test(rest) || dotSegment.test(decoded)) {
    throw refuse();
  }
  // No absolute or protocol-relative URL, and no userinfo-looking `@` in the first segment.
  if (/^\/*[a-z][a-z0-9+.-]*:\/\//i.test(decoded) || /^\/{2,}/.test(decoded) || /^\/*[^/]*@/.test(decoded)) {
    throw refuse();
  }
  const base = parsedBase(baseUrl);
  return { origin: base.origin, path: `${base.basePath}/${path.replace(/^\/+/, '')}${query}` };
}

/** A `.` or `..` path segment, also with a `;parameter` (Tomcat, Jetty and Spring read `..;x` as `..`). */
const dotSegment = /(?:^|\/)\.{1,2}(?:;[^/]*)?(?:\/|$)/;
/**
 * Characters a request target cannot carry as they are (space, DEL, beyond Latin-1), and the raw
 * bytes 0xC0/0xC1, which begin only overlong (invalid) UTF-8 sequences.
 */
const outsideRequestTarget = /[^\u0021-\u007e\u0080-\u00bf\u00c2-\u00ff]/;

const parsedBases = new Map<string, { origin: URL; basePath: string }>();

/** An integration's base URL, parsed once (there are only as many as integrations). */
function parsedBase(baseUrl: string): { origin: URL; basePath: string } {
  let parsed = parsedBases.get(baseUrl);
  if (parsed === undefined) {
    const base = new URL(baseUrl);
    parsed = { origin: new URL(base.origin), basePath: base.pathname.replace(/\/+$/, '') };
    if (parsedBases.size >= 1_000) parsedBases.clear();
    parsedBases.set(baseUrl, parsed);
  }
  return parsed;
}

/** `ANY /api/v1/connections/:id/proxy/*`: forwards with the connection's token, streaming both ways. */
export async function registerProxyRoutes(app: FastifyInstance, d: ProxyDeps): Promise<void> {
  const maxRetryBody = d.maxRetryBodyBytes ?? 1024 * 1024;
  await app.register(async (scope) => {
    // Bodies pass through untouched as streams: no parsing, no size limit beyond the upstream's.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { bodyLimit: 1024 * 1024 * 1024 }, (_req, payload, done) =>
      done(null, payload),
    );
    scope.all('/api/v1/connections/:id/proxy/*', async (request, reply) =>
      proxy(d, maxRetryBody, request, reply),
    );
    scope.all('/api/v1/connections/:id/proxy', async (request, reply) =>
      proxy(d, maxRetryBody, request, reply),
    );
  });
}

async function proxy(d: ProxyDeps, maxRetryBody: number, request: FastifyRequest, reply: FastifyReply) {
  const identity = requireUser(request, d.publicUrl);
  const { id } = request.params as { id: string };
  const row = /^[0-9a-f-]{36}$/i.test(id) ? await d.connections.findForUser(identity.userId, id) : undefined;
  if (row === undefined) throw connectionNotFound();
  const integration = await cachedIntegration(d, row.integration_id);
  if (integration !== undefined && !integration.enabled) {
    throw new Problem(
      409,
      'integration_disabled',
      'Conflict',
      'This integration is disabled by an administrator.',
    );
  }
  const baseUrl = integration?.settings.api?.baseUrl;
  if (baseUrl === undefined) {
    throw new Problem(409, 'conflict', 'Conflict', 'This integration has no API to proxy to.');
  }
  // What follows `/proxy` in the URL as sent; the id there must be the one routed (not encoded).
  const rawUrl = request.raw.url ?? '';
  const prefix = `/api/v1/connections/${id}/proxy`;
  if (!rawUrl.startsWith(prefix)) throw connectionNotFound();
  const target = upstreamTarget(baseUrl, rawUrl.slice(prefix.length));

  const headers = forwardedHeaders(request.headers, requestOnlyDrop);
  const method = request.method;
  const hasBody =
    method !== 'GET' && method !== 'HEAD' && request.body !== undefined && request.body !== null;
  const length = Number(request.headers['content-length'] ?? Number.NaN);
  // Buffer small bodies (known length within the limit) so a 401 can be retried; stream the rest.
  const body: Buffer | Readable | undefined = !hasBody
    ? undefined
    : Number.isFinite(length) && length <= maxRetryBody
      ? await readAll(request.body as Readable)
      : (request.body as Readable);
  const retryable = !(body instanceof Readable);

  const send = (token: UsableToken) => {
    headers.authorization = token.authorization;
    return d.request(target, body === undefined ? { method, headers } : { method, headers, body });
  };

  let token: UsableToken;
  try {
    token = await d.tokens.tokenFor(row);
  } catch (error) {
    throw connectionProblem(error, row, d.publicUrl);
  }
  let upstream = await sendOrFail(send, token);
  if (upstream.statusCode === 401 && retryable) {
    await upstream.body.dump();
    try {
      token = await d.tokens.tokenFor(row, {
        force: true,
        rejectedToken: token.value,
      });
    } catch (error) {
      throw connectionProblem(error, row, d.publicUrl);
    }
    upstream = await sendOrFail(send, token);
  }

  // The body is passed through undecoded, so its content-encoding still describes it.
  reply.code(upstream.statusCode);
  reply.headers(forwardedHeaders(upstream.headers, responseOnlyDrop));
  if (upstream.headers['cache-control'] === undefined) reply.header('cache-control', 'no-store');
  if (upstream.statusCode === 204 || upstream.statusCode === 304) {
    // No body by definition (RFC 9110 §15.3.5, §15.4.5): a Content-Length there describes the
    // representation, and undici would fail the empty body against it.
    upstream.body.dump().catch(() => {});
    reply.removeHeader('content-length');
    return reply.send();
  }
  return reply.send(upstream.body);
}

const integrationCache = new WeakMap<
  ProxyDeps,
  Map<string, { at: number; value: Promise<IntegrationRecord | undefined> }>
>();

/** The integration, cached for 5 s per service (an admin's change reaches every instance within that). */
function cachedIntegration(d: ProxyDeps, id: string): Promise<IntegrationRecord | undefined> {
  let cache = integrationCache.get(d);
  if (cache === undefined) {
    cache = new Map();
    integrationCache.set(d, cache);
  }
  const now = Date.now();
  const hit = cache.get(id);
  if (hit !== undefined && now - hit.at < 5_000) return hit.value;
  const value = d.catalog.getIntegration(id);
  cache.set(id, { at: now, value });
  value.catch(() => cache.delete(id));
  return value;
}

async function sendOrFail(
  send: (t: UsableToken) => Promise<Dispatcher.ResponseData>,
  token: UsableToken,
): Promise<Dispatcher.ResponseData> {
  try {
    return await send(token);
  } catch (error) {
    if (isOutboundBlocked(error)) {
      throw new Problem(
        502,
        'upstream_error',
        'Bad Gateway',
        'The API address is refused by the outbound policy.',
      );
    }
    const code = (error as { code?: string }).code ?? '';
    const timedOut =
      (error as { name?: string }).name === 'TimeoutError' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT';
    throw new Problem(
      timedOut ? 504 : 502,
      'upstream_error',
      timedOut ? 'Gateway Timeout' : 'Bad Gateway',
      timedOut ? 'The API did not answer in time.' : 'The API could not be reached.',
    );
  }
}

/**
 * The headers to pass on: all but hop-by-hop ones (the fixed list and any the `Connection`
 * header names) and those in `drop`; repeated headers joined (set-cookie never passes).
 */
function forwardedHeaders(
  from: Record<string, string | string[] | undefined>,
  drop: ReadonlySet<string>,
): Record<string, string> {
  const connection = from.connection === undefined ? '' : String(from.connection).toLowerCase();
  // `keep-alive` and `close` name no header of their own (the common case: no set to build).
  const named =
    connection === '' || connection === 'keep-alive' || connection === 'close'
      ? undefined
      : new Set(connection.split(',').map((t) => t.trim()));
  const out: Record<string, string> = {};
  for (const key in from) {
    const value = from[key];
    if (value === undefined || hopByHop.has(key) || drop.has(key) || named?.has(key) === true) continue;
    out[key] = typeof value === 'string' ? value : value.join(', ');
  }
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
