import { request as httpRequest } from 'node:http';
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
import { UserAgent } from '../support/user-agent.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

/** Everything a proxied call answered, for the token scan at the end. */
interface Seen {
  where: string;
  text: string;
}

describe.each(databaseKinds)('the HTTP proxy against oidc-provider and the demo API, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  /** A recording upstream behind the `recorder` integration (base path /v1): sees exactly what is forwarded. */
  let upstream: RecordingServer;
  /** Another host on loopback: nothing may ever reach it. */
  let trap: RecordingServer;
  let items: string;
  let recorder: string;
  const seen: Seen[] = [];

  const record = async (where: string, r: Response) => {
    const body = await r.text();
    const headers = [...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
    seen.push({ where, text: `${r.status}\n${headers}\n\n${body}` });
    return { status: r.status, body, headers: r.headers };
  };
  const get = async (path: string, init: RequestInit = {}) =>
    record(path, await svc.api('u-alice', path, init));
  const raw = async (target: string) => {
    const r = await rawRequest(svc.url, target, { authorization: `Bearer ${await svc.token('u-alice')}` });
    seen.push({ where: target, text: `${r.status}\n${JSON.stringify(r.headers)}\n\n${r.body}` });
    return r;
  };

  beforeAll(async () => {
    // The recorder answers 304 (with the Content-Length of the representation, as servers may) to `…/not-modified`.
    upstream = await startRecordingServer({
      answer: (got) =>
        got.url.startsWith('/v1/not-modified')
          ? { status: 304, headers: { etag: '"v1"', 'content-length': '11' } }
          : undefined,
    });
    trap = await startRecordingServer();
    lc = await startLifecycle({
      kind,
      webhooks: false,
      extraIntegrations: [demoApiIntegration('recorder', 'Recorder', `${upstream.url}/v1`)],
    });
    svc = await lc.startService({ background: false });
    items = await lc.connect(svc, 'u-alice');
    recorder = await lc.connect(svc, 'u-alice', 'alice', 'recorder');
  });

  afterAll(async () => {
    await lc?.close();
    await upstream?.close();
    await trap?.close();
  });

  it('an upstream 401 forces exactly one refresh and one retry, which succeeds', async () => {
    const before = { ...lc.api.counters, refreshes: lc.refreshCount() };
    lc.api.failNextWithUnauthorized(1);
    const r = await get(proxyPath(items));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).items).toHaveLength(3);
    expect(lc.refreshCount()).toBe(before.refreshes + 1);
    expect(lc.api.counters.unauthorized).toBe(before.unauthorized + 1);
    expect(lc.api.counters.requests).toBe(before.requests + 2);
    // The token was fresh: the refresh was the forced one, and it rotated cleanly.
    expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
  });

  it('a POST with a JSON body is retried after the 401 with the same body', async () => {
    const payload = { hello: 'world', n: [1, 2, 3], nested: { ünïcode: '✓', empty: '' } };
    const before = { ...lc.api.counters, refreshes: lc.refreshCount() };
    lc.api.failNextWithUnauthorized(1);
    const r = await get(proxyPath(items, 'echo'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual(payload);
    expect(lc.api.counters.unauthorized).toBe(before.unauthorized + 1);
    expect(lc.api.counters.requests).toBe(before.requests + 2);
    expect(lc.refreshCount()).toBe(before.refreshes + 1);
  });

  it("never forwards the caller's Authorization, Cookie or CSRF header; sends the connection's token", async () => {
    const callerJwt = await svc.token('u-alice');
    const r = await record(
      'recorder with bearer',
      await fetch(`${svc.url}${proxyPath(recorder, 'who?x=1')}`, {
        headers: {
          authorization: `Bearer ${callerJwt}`,
          cookie: 'nunq_session=caller-cookie-value; other=1',
          'x-csrf-token': 'caller-csrf-value',
          'x-custom': 'kept',
        },
      }),
    );
    expect(r.status).toBe(200);
    const got = upstream.received.at(-1)!;
    expect(got.url).toBe('/v1/who?x=1');
    expect(got.headers.cookie).toBeUndefined();
    expect(got.headers['x-csrf-token']).toBeUndefined();
    expect(got.headers['x-custom']).toBe('kept');
    expect(got.headers.authorization).not.toContain(callerJwt);
    const accessTokens = lc.tokenCalls.map((c) => c.accessToken).filter((t): t is string => t !== undefined);
    expect(accessTokens.map((t) => `Bearer ${t}`)).toContain(got.headers.authorization);

    // Signed in with the session cookie instead (a browser): the proxy is for bearer callers
    // only (contract §4), so the cookie is refused with a Bearer challenge and nothing is sent.
    const ua = new UserAgent();
    await ua.follow(`${svc.url}/session?token=${callerJwt}&return_to=/`, { maxHops: 1 });
    const session = ua.cookies(svc.url);
    expect(Object.keys(session).length).toBeGreaterThan(0);
    const receivedBefore = upstream.received.length;
    const viaCookie = await ua.get(`${svc.url}${proxyPath(recorder, 'from-browser')}`);
    seen.push({ where: 'recorder via cookie', text: `${viaCookie.status}\n${viaCookie.body}` });
    expect(viaCookie.status).toBe(401);
    expect(viaCookie.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(upstream.received.length).toBe(receivedBefore);

    // At the demo API: a caller's header reaching it would be rejected (it verifies every bearer).
    const before = lc.api.counters.unauthorized;
    const ok = await record(
      'items with cookie',
      await fetch(`${svc.url}${proxyPath(items)}`, {
        headers: { authorization: `Bearer ${callerJwt}`, cookie: 'nunq_session=x' },
      }),
    );
    expect(ok.status).toBe(200);
    expect(lc.api.counters.unauthorized).toBe(before);
  });

  const traversal = [
    '../../x',
    '%2e%2e/x',
    '%2E%2E/%2e%2e/x',
    '.%2e/x',
    'a/../../x',
    '..%5cx',
    '\\\\evil/x',
    // Matrix parameters: Tomcat, Jetty and Spring read `..;x` as `..`.
    '..;/x',
    'a/..;jsessionid=1/../x',
    '..%3b/x',
    '.;/x',
    // What only a second decoding, or a lax UTF-8 decoder, makes a dot or a slash.
    '%252e%252e/x',
    '..%252fx',
    '%c0%ae%c0%ae/x',
    '%C1%9C/x',
  ];
  it.each(traversal)('refuses the traversal %s with 400, reaching no one', async (rest) => {
    const counts = { api: lc.api.counters.requests, upstream: upstream.received.length };
    for (const id of [items, recorder]) {
      const r = await raw(`/api/v1/connections/${id}/proxy/${rest}`);
      expect(r.status, r.body).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect(lc.api.counters.requests).toBe(counts.api);
    expect(upstream.received.length).toBe(counts.upstream);
    expect(trap.received).toHaveLength(0);
  });

  const trapHost = () => new URL(trap.url).host;
  const leaving = [
    () => `http://${trapHost()}/x`,
    () => `http:%2F%2F${trapHost()}/x`,
    () => `/${trapHost()}/x`,
    () => `@${trapHost()}/x`,
    () => `/@${trapHost()}/x`,
    () => `x@${trapHost()}/x`,
    () => `%40${trapHost()}/x`,
  ];

  it('never sends an absolute URL or an @ trick in the path to another host', async () => {
    for (const make of leaving) {
      for (const id of [items, recorder]) await raw(`/api/v1/connections/${id}/proxy/${make()}`);
    }
    // The absolute form of a request target names the service itself, not the host inside it.
    await raw(`http://${trapHost()}/api/v1/connections/${recorder}/proxy/x`);
    expect(trap.received).toHaveLength(0);
    // What did reach the recording upstream stayed under its base path.
    expect(upstream.received.length).toBeGreaterThan(0);
    for (const got of upstream.received) expect(got.url.startsWith('/v1/'), got.url).toBe(true);
  });

  /** The targets among `rests` the proxy did not refuse with 400, with what the upstream received. */
  const notRefused = async (rests: string[]) => {
    const forwarded: string[] = [];
    for (const rest of rests) {
      const before = upstream.received.length;
      const r = await raw(`/api/v1/connections/${recorder}/proxy/${rest}`);
      if (r.status !== 400 || upstream.received.length !== before) {
        forwarded.push(`${rest} → ${r.status}, upstream got ${upstream.received.at(-1)?.url}`);
      }
    }
    return forwarded;
  };

  it('refuses an absolute URL or an @ trick in the path with 400', async () => {
    expect(await notRefused(leaving.map((make) => make()))).toEqual([]);
  });

  it('refuses a `..` segment hidden behind an encoded slash (..%2f) with 400', async () => {
    expect(await notRefused(['..%2f..%2fadmin', '%2e%2e%2fadmin', 'a/..%2F..%2Fadmin'])).toEqual([]);
  });

  it('passes an upstream 304 on without a body, whatever Content-Length it carried', async () => {
    const r = await raw(`/api/v1/connections/${recorder}/proxy/not-modified`);
    expect(r.status, r.body).toBe(304);
    expect(r.headers.etag).toBe('"v1"');
    expect(r.body).toBe('');
    expect(upstream.received.at(-1)!.url).toBe('/v1/not-modified');
  });

  it('never forwards path overrides (X-Original-URL, X-Rewrite-URL) or Expect; an Expect: 100-continue upload arrives', async () => {
    const body = JSON.stringify({ hello: 'world' });
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const { hostname, port } = new URL(svc.url);
      void svc.token('u-alice').then((jwt) => {
        const req = httpRequest(
          {
            host: hostname,
            port: Number(port),
            method: 'POST',
            path: `/api/v1/connections/${recorder}/proxy/upload`,
            headers: {
              authorization: `Bearer ${jwt}`,
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(body)),
              expect: '100-continue',
              'x-original-url': '/admin',
              'x-rewrite-url': '/admin',
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
            );
          },
        );
        req.on('continue', () => req.end(body));
        req.on('error', reject);
      }, reject);
    });
    expect(r.status, r.body).toBe(200);
    const got = upstream.received.at(-1)!;
    expect(got.url).toBe('/v1/upload');
    expect(got.body).toBe(body);
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    for (const h of ['expect', 'x-original-url', 'x-rewrite-url']) expect(got.headers[h], h).toBeUndefined();
  });

  it('takes the upstream path from right after the routed prefix, never from further on', async () => {
    const before = upstream.received.length;
    const sneaky = await raw(
      `/api/v1/connections/${recorder}/proxy/users?next=/api/v1/connections/${recorder}/proxy/admin`,
    );
    expect(sneaky.status, sneaky.body).toBe(200);
    expect(upstream.received.at(-1)!.url).toBe(`/v1/users?next=/api/v1/connections/${recorder}/proxy/admin`);
    // The id percent-encoded routes to the same connection, but is not the prefix as sent: 404.
    const encoded = `%${recorder.charCodeAt(0).toString(16)}${recorder.slice(1)}`;
    const r = await raw(`/api/v1/connections/${encoded}/proxy/users`);
    expect(r.status, r.body).toBe(404);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'connection_not_found' });
    expect(upstream.received.length).toBe(before + 1);
  });

  it('no proxy answer ever contained a token the provider issued', async () => {
    const secrets = lc.tokenCalls
      .flatMap((c) => [c.accessToken, c.refreshToken, c.idToken])
      .filter((t): t is string => typeof t === 'string');
    expect(lc.tokenCalls.filter((c) => c.accessToken !== undefined).length).toBeGreaterThanOrEqual(4);
    expect(seen.length).toBeGreaterThan(10);
    for (const s of seen) {
      for (const secret of secrets) {
        // The whole token and its signature part (a truncated copy is a leak too).
        expect(s.text.includes(secret) || s.text.includes(secret.slice(-24)), `a token in ${s.where}`).toBe(
          false,
        );
      }
    }
    // And the scan itself finds a token where there is one.
    const probe = `${seen[0]!.text}${secrets[0]}`;
    expect(probe.includes(secrets[0]!)).toBe(true);
  });
});
