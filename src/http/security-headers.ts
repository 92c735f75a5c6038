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
