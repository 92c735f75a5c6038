/**
 * The proxy's header rules, both directions, as pure functions (no Fastify, no I/O).
 *
 * Requests: a drop list. APIs need their own headers (`If-Match`, `Prefer`, `ConsistencyLevel`,
 * vendor headers), so everything passes except hop-by-hop headers, the caller's credentials,
 * where the caller came from, and headers that change what the upstream does with the method
 * or path.
 *
 * Responses: an allow list. A proxied response is served on our origin, and browsers keep
 * adding headers they act on (cookies, CORS, CSP, caching, HSTS, Alt-Svc, Clear-Site-Data,
 * reporting, service workers, ...), so only headers known to describe the API's answer pass:
 * representation and validator headers, `Location`, `Link`, rate-limit and request-id headers,
 * and custom `x-*` headers except the few that browsers or front proxies act on. Our own
 * security headers then go on top: a CSP `sandbox` without `allow-scripts` and
 * `default-src 'none'` (nothing runs, nothing loads, an opaque origin), `frame-ancestors
 * 'none'` and `X-Frame-Options: DENY`, `nosniff`, `Cross-Origin-Resource-Policy: same-origin`,
 * and a Cache-Control no shared cache may store (`private` or `no-store`).
 */

/** Headers never forwarded in either direction (RFC 9110 §7.6.1), including `Host` (the upstream's is set by the transport). */
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

/** Request headers the upstream never sees (besides hop-by-hop ones and any `x-forwarded-*`). */
const requestDrop = new Set([
  // The caller's credentials: the upstream gets the connection's token, nothing of ours.
  'authorization',
  'cookie',
  'cookie2',
  'x-csrf-token',
  // Where the caller came from: the upstream's business is the connection, not our users.
  'origin',
  'referer',
  'forwarded',
  'via',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  // Path overrides some servers and gateways honour (IIS URL Rewrite, Symfony): the path is ours to set.
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  // Method overrides: a GET must not become a TRACE (which echoes our token) or a DELETE upstream.
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'max-forwards',
  // undici refuses it, and Node has already answered `100 Continue` to the caller.
  'expect',
]);

/** Response headers that describe the API's answer, passed as they are (lower case). */
const responseAllow = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-range',
  'content-disposition',
  'content-location',
  'content-digest',
  'repr-digest',
  'digest',
  'accept-ranges',
  'etag',
  'last-modified',
  'location',
  'link',
  'retry-after',
  'vary',
  'date',
  'age',
  'allow',
  'accept-patch',
  'accept-post',
  'preference-applied',
  'deprecation',
  'sunset',
  'warning',
  'request-id',
  'client-request-id',
  'traceparent',
  'tracestate',
  'odata-version',
  'odata-entityid',
  'mcp-session-id',
  'mcp-protocol-version',
  // IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers).
  'ratelimit',
  'ratelimit-policy',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
]);

/** `x-*` response headers a browser or a front proxy acts on (the rest of `x-*` passes). */
const responseXDrop = new Set([
  'x-frame-options',
  'x-content-type-options',
  'x-xss-protection',
  'x-content-security-policy',
  'x-content-security-policy-report-only',
  'x-webkit-csp',
  'x-webkit-csp-report-only',
  'x-dns-prefetch-control',
  'x-permitted-cross-domain-policies',
  'x-download-options',
  'x-ua-compatible',
  // Front proxies serve a file or an internal location named by these (nginx, Apache, lighttpd).
  'x-sendfile',
  'x-sendfile-type',
  'x-lighttpd-send-file',
]);
/** `x-*` prefixes front proxies and platforms act on: nginx, LiteSpeed, Envoy, Next.js middleware. */
const responseXDropPrefixes = ['x-accel-', 'x-litespeed-', 'x-envoy-', 'x-middleware-'];

/**
 * The CSP of every proxied response: an opaque-origin sandbox that runs no script, loads
 * nothing, submits nothing and cannot be framed. @see CSP Level 3 §6.3.2 (sandbox)
 */
export const proxiedResponseCsp =
  "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The headers to send upstream: all but hop-by-hop ones (the fixed list and any `Connection`
 * names), the drop list and `x-forwarded-*`; repeated headers joined. The caller adds the
 * connection's `authorization`.
 */
export function upstreamRequestHeaders(
  from: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const named = connectionNamed(from.connection);
  const out: Record<string, string> = {};
  for (const key in from) {
    const value = from[key];
    if (value === undefined || hopByHop.has(key) || requestDrop.has(key) || named?.has(key) === true)
      continue;
    if (key.startsWith('x-forwarded-')) continue;
    out[key] = typeof value === 'string' ? value : value.join(', ');
  }
  return out;
}

/**
 * The headers to answer the caller with: the allow-listed upstream headers (a `WWW-Authenticate`
 * only with Bearer challenges, which prompt no browser), then our security headers and a
 * Cache-Control no shared cache stores.
 */
export function callerResponseHeaders(
  from: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const named = connectionNamed(from.connection);
  const out: Record<string, string> = {};
  for (const key in from) {
    const value = from[key];
    if (value === undefined || named?.has(key) === true || !responseHeaderPasses(key)) continue;
    out[key] = typeof value === 'string' ? value : value.join(', ');
  }
  const challenge = from['www-authenticate'];
  if (challenge !== undefined) {
    const joined = typeof challenge === 'string' ? challenge : challenge.join(', ');
    if (bearerOnly.test(joined) && !promptingScheme.test(joined)) out['www-authenticate'] = joined;
  }
  out['content-security-policy'] = proxiedResponseCsp;
  out['x-frame-options'] = 'DENY';
  out['x-content-type-options'] = 'nosniff';
  out['cross-origin-resource-policy'] = 'same-origin';
  out['cache-control'] = privateCacheControl(from['cache-control']);
  return out;
}

/** Whether an upstream response header (lower case) may reach the caller as it is. */
export function responseHeaderPasses(name: string): boolean {
  if (responseAllow.has(name)) return true;
  if (!name.startsWith('x-') || responseXDrop.has(name)) return false;
  for (const prefix of responseXDropPrefixes) if (name.startsWith(prefix)) return false;
  return true;
}

const bearerOnly = /^\s*bearer(?:\s|$)/i;
const promptingScheme = /(?:^|[\s,])(?:basic|digest|negotiate|ntlm)(?:\s|,|$)/i;

/** Directives a private cache may still use; `public`, `s-maxage` and `proxy-revalidate` are for shared caches. */
const privateDirectives = new Set([
  'max-age',
  'no-cache',
  'must-revalidate',
  'no-transform',
  'immutable',
  'stale-while-revalidate',
  'stale-if-error',
]);
const cacheControlMemo = new Map<string, string>();

/**
 * The upstream's Cache-Control for a private cache only (RFC 9111 §5.2.2.7): `no-store` when it
 * sent none or said so, else `private` plus the directives a private cache may use.
 */
export function privateCacheControl(value: string | string[] | undefined): string {
  if (value === undefined) return 'no-store';
  const joined = typeof value === 'string' ? value : value.join(', ');
  let rewritten = cacheControlMemo.get(joined);
  if (rewritten === undefined) {
    const kept = ['private'];
    let noStore = false;
    for (const part of joined.split(',')) {
      const directive = part.trim();
      const eq = directive.indexOf('=');
      const name = (eq === -1 ? directive : directive.slice(0, eq)).trim().toLowerCase();
      if (name === 'no-store') noStore = true;
      else if (privateDirectives.has(name)) kept.push(directive);
    }
    rewritten = noStore ? 'no-store' : kept.join(', ');
    if (cacheControlMemo.size >= 256) cacheControlMemo.clear();
    cacheControlMemo.set(joined, rewritten);
  }
  return rewritten;
}

/** The header names a `Connection` header lists (hop-by-hop for this message), if any. */
function connectionNamed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const value = (typeof connection === 'string' ? connection : connection.join(',')).toLowerCase();
  // `keep-alive` and `close` name no header of their own (the common case: no set to build).
  if (value === '' || value === 'keep-alive' || value === 'close') return undefined;
  return new Set(value.split(',').map((t) => t.trim()));
}
