/**
 * The headers every response of ours carries, pages, API answers and errors alike (also the raw
 * answers written outside Fastify): no sniffing, no framing, no caching, a strict CSP.
 */
export const securityHeaders: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own form posts.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' *; frame-ancestors 'none'; base-uri 'none'; script-src 'self'; connect-src 'self'",
  'cache-control': 'no-store',
};

/**
 * The headers for a service at `publicUrl`: behind https also HSTS (a year, this host only: the
 * operator's other hosts are not ours to pin). Plain http (local tests) gets none: browsers
 * ignore it there. @see RFC 6797 §7.2
 */
export function securityHeadersFor(publicUrl: string): Readonly<Record<string, string>> {
  return new URL(publicUrl).protocol === 'https:'
    ? { ...securityHeaders, 'strict-transport-security': 'max-age=31536000' }
    : securityHeaders;
}
