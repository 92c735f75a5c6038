/**
 * The MCP gateway's fast path (`src/http/fast-routes.ts`, the POSTs of `/mcp/:integrationId` and
 * `/mcp`) against its Fastify routes: the same request answered both ways must give the same
 * status, headers and body, against a real MCP server. Real HTTP reaches the server's listener,
 * where the fast routes look first; `app.inject` goes straight to Fastify's handler. A counter on
 * `fastRoutes.handle` proves which way each request went.
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import type { Database } from '../../src/store/types.js';
import { databaseKinds } from '../support/databases.js';
import {
  type Answer,
  comparable,
  countFastRoutes,
  type FastRouteCounter,
  requestsCounted,
} from '../support/fast-routes.js';
import { type Lifecycle, rawRequest, startLifecycle } from '../support/lifecycle.js';
import { rawExchange } from '../support/raw-http.js';
import { type TestService, testJwtSecret } from '../support/service.js';
import { type McpUpstream, startMcpUpstream, trackerIntegration, trackerIsMcp } from './mcp-upstream.js';

const protocolVersion = '2025-11-25';

const initialize = (id: number) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'fast-path-test', version: '1.0.0' } },
  });
const echo = (id: number, name: string) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { text: 'hi' } } });

interface Case {
  name: string;
  /** `/mcp/tracker`, `/mcp`, … */
  path: string;
  /** `{alice}` / `{bob}` / `{forged}` are bearers; anything else is sent as it is. */
  authorization: string;
  /** `{session}` is alice's session on the case's path. */
  session?: string;
  contentType?: string;
  body: string;
  status: number;
}

const cases: Case[] = [
  {
    name: 'a tools/call',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: '{session}',
    body: echo(7, 'echo'),
    status: 200,
  },
  {
    name: 'a routed tools/call on /mcp',
    path: '/mcp',
    authorization: '{alice}',
    session: '{session}',
    body: echo(8, 'tracker__echo'),
    status: 200,
  },
  {
    name: 'a tools/list on /mcp',
    path: '/mcp',
    authorization: '{alice}',
    session: '{session}',
    body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}',
    status: 200,
  },
  {
    name: 'an unknown tool on /mcp',
    path: '/mcp',
    authorization: '{alice}',
    session: '{session}',
    body: echo(10, 'nowhere__echo'),
    status: 200,
  },
  {
    name: 'a notification',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: '{session}',
    body: '{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}',
    status: 202,
  },
  {
    name: 'a query string',
    path: '/mcp/tracker?x=1',
    authorization: '{alice}',
    session: '{session}',
    body: echo(11, 'echo'),
    status: 200,
  },
  {
    name: 'an unknown session',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: 'not-a-session',
    body: echo(12, 'echo'),
    status: 404,
  },
  {
    name: "another user's session",
    path: '/mcp/tracker',
    authorization: '{bob}',
    session: '{session}',
    body: echo(13, 'echo'),
    status: 404,
  },
  { name: 'no session', path: '/mcp/tracker', authorization: '{alice}', body: echo(14, 'echo'), status: 400 },
  {
    name: 'plain text',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: '{session}',
    contentType: 'text/plain',
    body: echo(15, 'echo'),
    status: 415,
  },
  {
    name: 'broken JSON',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: '{session}',
    body: '{"jsonrpc":',
    status: 400,
  },
  {
    name: 'an empty body',
    path: '/mcp/tracker',
    authorization: '{alice}',
    session: '{session}',
    body: '',
    status: 400,
  },
  {
    name: 'an unknown integration',
    path: '/mcp/nowhere',
    authorization: '{alice}',
    body: echo(16, 'echo'),
    status: 404,
  },
  {
    name: 'a disabled integration',
    path: '/mcp/switched-off',
    authorization: '{alice}',
    body: echo(17, 'echo'),
    status: 409,
  },
  {
    name: 'a garbage bearer',
    path: '/mcp/tracker',
    authorization: 'Bearer not-a-jwt',
    body: echo(18, 'echo'),
    status: 401,
  },
  { name: 'a Basic header', path: '/mcp', authorization: 'Basic YTpi', body: echo(19, 'echo'), status: 401 },
  {
    name: 'a bearer signed by someone else',
    path: '/mcp/tracker',
    authorization: '{forged}',
    body: echo(20, 'echo'),
    status: 401,
  },
];

describe.each(databaseKinds)('the MCP gateway fast path answers as its Fastify routes do, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let upstream: McpUpstream;
  let app: FastifyInstance;
  let counter: FastRouteCounter;
  let db: Kysely<Database>;
  const bearers: Record<string, string> = {};
  /** Alice's session on each path, opened through Fastify. */
  const sessions: Record<string, string> = {};

  beforeAll(async () => {
    lc = await startLifecycle({
      kind,
      webhooks: false,
      extraIntegrations: [trackerIntegration],
    });
    upstream = await startMcpUpstream(lc.oidc.issuer);
    svc = await lc.startService({ background: false });
    await lc.connect(svc, 'u-alice', 'alice', 'tracker');
    db = svc.service.ctx.store.db;
    await trackerIsMcp(db, upstream.url);
    await db
      .insertInto('integrations')
      .values({
        id: 'switched-off',
        kind: 'mcp',
        name: 'Switched off',
        provider_id: null,
        settings: JSON.stringify({ scopes: [], url: upstream.url }),
        client_secret_sealed: null,
        source: 'admin',
        enabled: 0,
        created_at: Date.now(),
        updated_at: Date.now(),
      })
      .execute();
    bearers['{alice}'] = `Bearer ${await svc.token('u-alice')}`;
    bearers['{bob}'] = `Bearer ${await svc.token('u-bob')}`;
    bearers['{forged}'] =
      `Bearer ${await mintToken(`${testJwtSecret}-not`, { sub: 'u-alice' }, { expiresIn: '1h' })}`;
    app = svc.service.app;
    counter = countFastRoutes(app);
    for (const path of ['/mcp/tracker', '/mcp']) {
      const opened = await app.inject({
        method: 'POST',
        url: path,
        headers: { ...headersFor('{alice}'), 'content-type': 'application/json' },
        payload: initialize(1),
      });
      expect(opened.statusCode).toBe(200);
      sessions[path] = String(opened.headers['mcp-session-id']);
    }
    // The aggregate opens its upstream session on the first routed call: done here, so that each
    // case's two calls reach the server alike.
    const warm = await app.inject({
      method: 'POST',
      url: '/mcp',
      headers: {
        ...headersFor('{alice}', '{session}', '/mcp'),
        'content-type': 'application/json',
      },
      payload: echo(2, 'tracker__echo'),
    });
    expect(warm.body).toContain('echo: hi');
  });

  afterAll(async () => {
    await lc?.close();
    await upstream?.close();
  });

  beforeEach(() => {
    counter.reset();
  });

  function headersFor(
    authorization: string,
    session?: string,
    path = '/mcp/tracker',
  ): Record<string, string> {
    const headers: Record<string, string> = {
      host: new URL(svc.url).host,
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': protocolVersion,
      authorization: bearers[authorization] ?? authorization,
    };
    if (session !== undefined)
      headers['mcp-session-id'] = session === '{session}' ? sessions[path.split('?')[0]!]! : session;
    return headers;
  }

  const viaServer = async (c: Case): Promise<Answer> => {
    const headers = {
      ...headersFor(c.authorization, c.session, c.path),
      'content-type': c.contentType ?? 'application/json',
    };
    const r = await rawRequest(svc.url, c.path, headers, 'POST', c.body);
    return { status: r.status, headers: comparable(r.headers), body: r.body };
  };

  const viaFastify = async (c: Case): Promise<Answer> => {
    const headers = {
      ...headersFor(c.authorization, c.session, c.path),
      'content-type': c.contentType ?? 'application/json',
    };
    const r = await app.inject({ method: 'POST', url: c.path, headers, payload: c.body });
    return { status: r.statusCode, headers: comparable(r.headers), body: r.body };
  };

  it.each(cases)('$name', async (c) => {
    const before = upstream.seen.length;
    const fast = await viaServer(c);
    expect(counter.taken).toBe(1);
    const reachedFast = upstream.seen.length - before;
    const slow = await viaFastify(c);
    expect(counter.taken).toBe(1);
    const reachedSlow = upstream.seen.length - before - reachedFast;

    expect(fast.status).toBe(c.status);
    expect(fast).toEqual(slow);
    expect(reachedFast).toBe(reachedSlow);
    if (c.status === 401) expect(fast.headers['www-authenticate']).toBe('Bearer realm="nunq-connect"');
    // Nothing of ours in an answer: no nunq JWT, no upstream token.
    for (const bearer of Object.values(bearers)) expect(fast.body).not.toContain(bearer.slice(7));
  });

  it('opens a session with initialize as Fastify does', async () => {
    const fast = await viaServer({
      name: 'init',
      path: '/mcp/tracker',
      authorization: '{alice}',
      body: initialize(2),
      status: 200,
    });
    expect(counter.taken).toBe(1);
    const slow = await viaFastify({
      name: 'init',
      path: '/mcp/tracker',
      authorization: '{alice}',
      body: initialize(2),
      status: 200,
    });
    expect(fast.status).toBe(200);
    // Each initialize opens a session of its own: the same answer but for its id.
    expect(fast.headers['mcp-session-id']).not.toBe(slow.headers['mcp-session-id']);
    const { 'mcp-session-id': _fast, ...fastRest } = fast.headers;
    const { 'mcp-session-id': _slow, ...slowRest } = slow.headers;
    expect(fastRest).toEqual(slowRest);
    expect(fast.body).toEqual(slow.body);
    // The session the fast path opened works for the next call, which goes the fast way too.
    const call = await rawRequest(
      svc.url,
      '/mcp/tracker',
      { ...headersFor('{alice}'), 'mcp-session-id': _fast!, 'content-type': 'application/json' },
      'POST',
      echo(3, 'echo'),
    );
    expect(call.status).toBe(200);
    expect(call.body).toContain('"id":3');
    expect(call.body).toContain('echo: hi');
    expect(counter.taken).toBe(2);
  });

  it('leaves to Fastify what it does not take, and Fastify answers it', async () => {
    const port = Number(new URL(svc.url).port);
    const alice = bearers['{alice}']!;
    const session = sessions['/mcp/tracker']!;
    const head = (extra: string) =>
      `POST /mcp/tracker HTTP/1.1\r\nHost: x\r\nAuthorization: ${alice}\r\nMcp-Session-Id: ${session}\r\n` +
      `Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: ${protocolVersion}\r\n${extra}`;
    const statusOf = (r: { response: string }) => Number(/^HTTP\/1\.1 (\d{3})/.exec(r.response)?.[1] ?? 0);
    const body = echo(30, 'echo');
    const chunked = await rawExchange(port, [
      `${head('Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')}` +
        `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    ]);
    const untyped = await rawExchange(port, [
      `${head(`Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`)}${body}`,
    ]);
    const oversized = await rawExchange(port, [
      head(
        `Content-Type: application/json\r\nContent-Length: ${1024 * 1024 + 1}\r\nConnection: close\r\n\r\n`,
      ),
    ]);
    const twoBearers = await rawExchange(port, [
      `${head(`Authorization: ${alice}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`)}${body}`,
    ]);
    const encoded = await rawRequest(
      svc.url,
      '/mcp/%74racker',
      { ...headersFor('{alice}'), 'mcp-session-id': session, 'content-type': 'application/json' },
      'POST',
      body,
    );
    const longId = await rawRequest(
      svc.url,
      `/mcp/${'a'.repeat(101)}`,
      { ...headersFor('{alice}'), 'content-type': 'application/json' },
      'POST',
      body,
    );
    expect(counter.taken).toBe(0);
    expect({
      chunked: statusOf(chunked),
      untyped: statusOf(untyped),
      oversized: statusOf(oversized),
      twoBearers: statusOf(twoBearers),
      encoded: encoded.status,
      longId: longId.status,
    }).toEqual({ chunked: 200, untyped: 415, oversized: 413, twoBearers: 400, encoded: 200, longId: 400 });
    expect(chunked.response).toContain('echo: hi');
  });

  it('gives up quietly on a caller that goes away mid-body, and keeps serving', async () => {
    const port = Number(new URL(svc.url).port);
    const before = upstream.seen.length;
    const cut = await rawExchange(
      port,
      [
        `POST /mcp/tracker HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearers['{alice}']}\r\n` +
          `Mcp-Session-Id: ${sessions['/mcp/tracker']}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"jsonrpc":"2.0",`,
      ],
      { waitMs: 300 },
    );
    expect(cut.response).toBe('');
    expect(counter.taken).toBe(1);
    expect(upstream.seen.length).toBe(before);
    const next = await viaServer(cases[0]!);
    expect(next.status).toBe(200);
  });

  it('leaves one access line and one metric per fast answer', async () => {
    const count = () => requestsCounted(svc, 'method="POST",route="/mcp/:integrationId",status="200"');
    const lines = () =>
      svc.logs.filter((l) => l.includes('"request completed"') && l.includes('/mcp/tracker?counted')).length;
    const before = { metric: await count(), lines: lines() };
    const r = await viaServer({ ...cases[0]!, path: '/mcp/tracker?counted' });
    expect(r.status).toBe(200);
    expect(counter.taken).toBe(1);
    await expect.poll(lines).toBe(before.lines + 1);
    await expect.poll(count).toBe(before.metric + 1);
  });
});
