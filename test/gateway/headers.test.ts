import { describe, expect, it } from 'vitest';
import {
  callerResponseHeaders,
  privateCacheControl,
  proxiedResponseCsp,
  upstreamRequestHeaders,
} from '../../src/gateway/headers.js';

describe('the proxy request header rules', () => {
  const dropped = [
    'authorization',
    'cookie',
    'cookie2',
    'x-csrf-token',
    'origin',
    'referer',
    'forwarded',
    'via',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'x-real-ip',
    'x-client-ip',
    'true-client-ip',
    'cf-connecting-ip',
    'x-original-url',
    'x-rewrite-url',
    'x-original-uri',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    'max-forwards',
    'expect',
    'host',
    'connection',
    'keep-alive',
    'proxy-authorization',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
  ];
  it.each(dropped)('never forwards %s', (name) => {
    expect(upstreamRequestHeaders({ [name]: 'value', accept: 'application/json' })).toEqual({
      accept: 'application/json',
    });
  });

  it('forwards everything else, joining repeated values, minus what Connection names', () => {
    expect(
      upstreamRequestHeaders({
        accept: 'application/json',
        'content-type': 'application/json',
        'content-length': '12',
        'if-match': '"v1"',
        prefer: 'return=minimal',
        consistencylevel: 'eventual',
        'x-custom': ['a', 'b'],
        'x-secret-hop': 'hop',
        connection: 'x-secret-hop, keep-alive',
      }),
    ).toEqual({
      accept: 'application/json',
      'content-type': 'application/json',
      'content-length': '12',
      'if-match': '"v1"',
      prefer: 'return=minimal',
      consistencylevel: 'eventual',
      'x-custom': 'a, b',
    });
  });
});

describe('the proxy response header rules', () => {
  const hostile: Record<string, string | string[]> = {
    'content-security-policy': "script-src 'unsafe-inline'",
    'content-security-policy-report-only': "default-src 'none'",
    'x-frame-options': 'ALLOWALL',
    'x-content-type-options': 'none',
    'x-xss-protection': '0',
    'access-control-allow-origin': '*',
    'access-control-allow-credentials': 'true',
    'access-control-allow-headers': 'authorization',
    'access-control-expose-headers': '*',
    'cache-control': 'public, max-age=600, s-maxage=3600',
    'surrogate-control': 'max-age=3600',
    'cdn-cache-control': 'max-age=3600',
    expires: 'Thu, 01 Jan 2099 00:00:00 GMT',
    'service-worker-allowed': '/',
    'set-cookie': ['nunq_session=evil; Path=/', 'other=1'],
    'set-cookie2': 'a=1',
    'clear-site-data': '"cookies", "storage"',
    'strict-transport-security': 'max-age=0',
    'alt-svc': 'h2="evil.example:443"',
    'report-to': '{"group":"x","endpoints":[{"url":"https://evil.example"}]}',
    'reporting-endpoints': 'x="https://evil.example"',
    nel: '{"report_to":"x","max_age":3600}',
    refresh: '0; url=https://evil.example',
    'permissions-policy': 'camera=*',
    'cross-origin-resource-policy': 'cross-origin',
    'cross-origin-opener-policy': 'unsafe-none',
    'timing-allow-origin': '*',
    'origin-agent-cluster': '?0',
    'speculation-rules': '"/rules.json"',
    'x-accel-redirect': '/internal/secrets',
    'x-sendfile': '/etc/passwd',
    'x-envoy-upstream-service-time': '1',
    'x-middleware-rewrite': '/admin',
    'www-authenticate': 'Basic realm="Sign in to nunq"',
    connection: 'keep-alive',
    'transfer-encoding': 'chunked',
  };
  const kept: Record<string, string> = {
    'content-type': 'text/html; charset=utf-8',
    'content-length': '42',
    etag: '"v1"',
    'last-modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
    link: '<https://api.example/v1/items?page=2>; rel="next"',
    location: 'https://api.example/v1/items/1',
    'retry-after': '5',
    'x-ratelimit-remaining': '42',
    'ratelimit-policy': '"default";q=100;w=60',
    'x-request-id': 'abc',
    'request-id': 'def',
    'mcp-session-id': 'session-1',
  };

  it('passes only allow-listed headers and puts our own security headers on top', () => {
    const out = callerResponseHeaders({ ...hostile, ...kept });
    expect(out).toEqual({
      ...kept,
      'content-security-policy': proxiedResponseCsp,
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'cross-origin-resource-policy': 'same-origin',
      'cache-control': 'private, max-age=600',
    });
  });

  it('sandboxes without scripts and forbids framing', () => {
    const csp = callerResponseHeaders({})['content-security-policy'] ?? '';
    const directives = csp.split(';').map((d) => d.trim());
    expect(directives).toContain('sandbox');
    expect(directives).toContain("default-src 'none'");
    expect(directives).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('allow-scripts');
  });

  it('passes a Bearer challenge but none a browser would prompt for', () => {
    const bearer = 'Bearer realm="api", error="insufficient_scope", scope="items:write"';
    expect(callerResponseHeaders({ 'www-authenticate': bearer })['www-authenticate']).toBe(bearer);
    for (const challenge of [
      'Basic realm="x"',
      'Bearer realm="x", Basic realm="y"',
      'Digest realm="x"',
      'NTLM',
    ]) {
      expect(
        callerResponseHeaders({ 'www-authenticate': challenge })['www-authenticate'],
        challenge,
      ).toBeUndefined();
    }
  });

  const cacheControl: Array<[string | undefined, string]> = [
    [undefined, 'no-store'],
    ['public', 'private'],
    ['public, max-age=600, s-maxage=3600', 'private, max-age=600'],
    ['s-maxage=60, proxy-revalidate', 'private'],
    ['max-age=60, must-revalidate', 'private, max-age=60, must-revalidate'],
    ['no-cache', 'private, no-cache'],
    ['public, no-store', 'no-store'],
    ['PUBLIC, Max-Age=5', 'private, Max-Age=5'],
    ['private, max-age=5', 'private, max-age=5'],
  ];
  it.each(cacheControl)('rewrites Cache-Control %s as %s', (value, expected) => {
    expect(privateCacheControl(value)).toBe(expected);
  });
});
