import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The paths that answer CORS: the JSON API. Not the proxy (a proxied answer is the upstream's
 * and never grants CORS; see docs/security.md) and not the MCP gateway (for MCP clients, not
 * pages), whatever the origin.
 */
export function answersCors(path: string): boolean {
  return path.startsWith('/api/v1/') && !/^\/api\/v1\/connections\/[^/]*\/proxy(?:\/|$)/.test(path);
}

const allowMethods = 'GET, POST, PUT, PATCH, DELETE';
const allowHeaders = 'authorization, content-type, last-event-id';
const exposeHeaders = 'retry-after, location';

/**
 * CORS for the host platform's pages (`server.embedOrigins`) only: an exact listed `Origin` gets
 * `Access-Control-Allow-Origin` naming it; any other origin gets no CORS header at all. Never
 * `Access-Control-Allow-Credentials`: a cross-origin page calls with `Authorization: Bearer`, and
 * the session cookie never acts cross-origin. Answers a listed origin's preflight itself (204)
 * and returns true then. @see WHATWG Fetch §3.2 (CORS protocol)
 */
export function applyCors(
  origins: ReadonlySet<string>,
  request: FastifyRequest,
  reply: FastifyReply,
): boolean {
  if (origins.size === 0) return false; // the usual deployment: nothing to do on any request
  const origin = request.headers.origin;
  const path = request.url.split('?')[0] ?? '';
  if (!answersCors(path)) return false;
  reply.header('vary', 'origin');
  if (origin === undefined || !origins.has(origin)) return false;
  reply.header('access-control-allow-origin', origin);
  const preflight =
    request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
  if (!preflight) {
    reply.header('access-control-expose-headers', exposeHeaders);
    return false;
  }
  reply
    .header('access-control-allow-methods', allowMethods)
    .header('access-control-allow-headers', allowHeaders)
    .header('access-control-max-age', '600')
    .code(204)
    .send();
  return true;
}
