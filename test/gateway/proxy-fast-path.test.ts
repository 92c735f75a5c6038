/**
 * The proxy's fast path (`src/http/fast-routes.ts`) against its Fastify route: the same request
 * answered both ways must give the same status, headers, body and upstream request. Real HTTP
 * reaches the server's listener, where the fast routes look first; `app.inject` goes straight to
 * Fastify's handler. A counter on `fastRoutes.handle` proves which way each request went.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import { databaseKinds } from '../support/databases.js';
import {
  type Answer,
  comparable,
  countFastRoutes,
  type FastRouteCounter,
  requestsCounted,
} from '../support/fast-routes.js';
import { demoApiIntegration, type Lifecycle, rawRequest, startLifecycle } from '../support/lifecycle.js';
import { rawExchange } from '../support/raw-http.js';
import { type TestService, testJwtSecret } from '../support/service.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

interface Case {
  name: string;
  method?: 'GET' | 'HEAD' | 'DELETE';
  /** The target after `/api/v1/connections/`; `{c}` is alice's recorder connection. */
  target: string;
  /** The Authorization header; `{alice}` / `{bob}` are valid bearers for them. */
  authorization: string;
  status: number;
}

const cases: Case[] = [
  { name: 'a plain GET', target: '{c}/proxy/things?x=1&y=%20z', authorization: '{alice}', status: 200 },
  { name: 'the API root', target: '{c}/proxy', authorization: '{alice}', status: 200 },
  { name: 'the API root with a query', target: '{c}/proxy?top=5', authorization: '{alice}', status: 200 },
  { name: 'a HEAD', method: 'HEAD', target: '{c}/proxy/things', authorization: '{alice}', status: 200 },
  { name: 'a DELETE', method: 'DELETE', target: '{c}/proxy/things/1', authorization: '{alice}', status: 200 },
  { name: 'hostile upstream headers', target: '{c}/proxy/hostile', authorization: '{alice}', status: 200 },
  { name: 'an upstream 404', target: '{c}/proxy/missing', authorization: '{alice}', status: 404 },
  { name: 'an upstream 304', target: '{c}/proxy/not-modified', authorization: '{alice}', status: 304 },
  { name: 'a garbage bearer', target: '{c}/proxy/things', authorization: 'Bearer not-a-jwt', status: 401 },
  { name: 'a Basic header', target: '{c}/proxy/things', authorization: 'Basic YTpi', status: 401 },
  {
    name: 'a bearer signed by someone else',
    target: '{c}/proxy/things',
    authorization: '{forged}',
    status: 401,
  },
  { name: "another user's connection", target: '{c}/proxy/things', authorization: '{bob}', status: 404 },
  {
    name: 'an unknown connection',
    target: '00000000-0000-4000-8000-000000000000/proxy/things',
    authorization: '{alice}',
    status: 404,
  },
];

describe.each(databaseKinds)('the proxy fast path answers as its Fastify route does, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let upstream: RecordingServer;
  let streamer: Streamer;
  let connection: string;
  let streamed: string;
  let app: FastifyInstance;
  let counter: FastRouteCounter;
  const bearers: Record<string, string> = {};

  beforeAll(async () => {
    upstream = await startRecordingServer({
      answer: (got): { status: number; headers?: Record<string, string>; body?: string } | undefined => {
        if (got.url.startsWith('/v1/hostile'))
          return {
            status: 200,
            headers: {
              'content-type': 'text/html',
              'set-cookie': 'sid=upstream; Path=/',
              'access-control-allow-origin': '*',
              'content-security-policy': "script-src 'unsafe-inline'",
              'www-authenticate': 'Basic realm="x"',
              'cache-control': 'public, max-age=60',
              etag: '"h1"',
              'x-upstream-id': 'u-1',
            },
            body: '<script>alert(1)</script>',
          };
        if (got.url.startsWith('/v1/missing'))
          return { status: 404, headers: { 'content-type': 'application/json' }, body: '{"error":"no"}' };
        if (got.url.startsWith('/v1/not-modified'))
          return { status: 304, headers: { etag: '"v1"', 'content-length': '11' } };
        return undefined;
      },
    });
    streamer = await startStreamer();
    lc = await startLifecycle({
      kind,
      webhooks: false,
      extraIntegrations: [
        demoApiIntegration('recorder', 'Recorder', `${upstream.url}/v1`),
        demoApiIntegration('streamer', 'Streamer', `${streamer.url}/v1`),
      ],
    });
    svc = await lc.startService({ background: false });
    connection = await lc.connect(svc, 'u-alice', 'alice', 'recorder');
    streamed = await lc.connect(svc, 'u-alice', 'alice', 'streamer');
    bearers['{alice}'] = `Bearer ${await svc.token('u-alice')}`;
    bearers['{bob}'] = `Bearer ${await svc.token('u-bob')}`;
    bearers['{forged}'] =
      `Bearer ${await mintToken(`${testJwtSecret}-not`, { sub: 'u-alice' }, { expiresIn: '1h' })}`;
    app = svc.service.app;
    counter = countFastRoutes(app);
  });

  afterAll(async () => {
    await lc?.close();
    await upstream?.close();
    await streamer?.close();
  });

  beforeEach(() => {
    counter.reset();
  });

  const headersFor = (authorization: string) => ({
    host: new URL(svc.url).host,
    'user-agent': 'fast-path-test',
    accept: 'application/json',
    authorization: bearers[authorization] ?? authorization,
  });

  /** Through the server's listener: the fast routes look first. */
  const viaServer = async (c: Case): Promise<Answer> => {
    const target = `/api/v1/connections/${c.target.replace('{c}', connection)}`;
    const r = await rawRequest(svc.url, target, headersFor(c.authorization), c.method ?? 'GET');
    return { status: r.status, headers: comparable(r.headers), body: r.body };
  };

  /** Straight into Fastify's handler. */
  const viaFastify = async (c: Case): Promise<Answer> => {
    const url = `/api/v1/connections/${c.target.replace('{c}', connection)}`;
    const r = await app.inject({ method: c.method ?? 'GET', url, headers: headersFor(c.authorization) });
    return { status: r.statusCode, headers: comparable(r.headers), body: r.body };
  };

  it.each(cases)('$name', async (c) => {
    const before = upstream.received.length;
    const fast = await viaServer(c);
    expect(counter.taken).toBe(1);
    const forwardedFast = upstream.received.slice(before);
    const fastifyBefore = upstream.received.length;
    const slow = await viaFastify(c);
    expect(counter.taken).toBe(1);
    const forwardedSlow = upstream.received.slice(fastifyBefore);

    expect(fast.status).toBe(c.status);
    expect(fast).toEqual(slow);
    // What the upstream was sent: the same request, token included.
    expect(
      forwardedFast.map(({ method, url, headers }) => ({ method, url, headers: comparable(headers) })),
    ).toEqual(
      forwardedSlow.map(({ method, url, headers }) => ({ method, url, headers: comparable(headers) })),
    );
    if (c.status === 401) expect(fast.headers['www-authenticate']).toBe('Bearer realm="nunq-connect"');
  });

  it('leaves to Fastify what it does not take, and Fastify answers it', async () => {
    const path = `/api/v1/connections/${connection}/proxy/things`;
    const alice = bearers['{alice}']!;
    const declined: Array<[string, Promise<{ status: number }>]> = [
      ['two Authorization headers', rawTwoAuthorizations(svc.url, path, alice)],
      ['no Authorization', rawRequest(svc.url, path, { accept: 'application/json' })],
      ['an encoded path', rawRequest(svc.url, `${path}/%61`, { authorization: alice })],
      ['a TRACE', rawRequest(svc.url, path, { authorization: alice }, 'TRACE')],
      [
        'a POST with a body',
        svc.api('u-alice', path, {
          method: 'POST',
          body: '{"a":1}',
          headers: { 'content-type': 'application/json' },
        }),
      ],
      [
        'an upper-case route',
        rawRequest(svc.url, path.replace('/api/v1/', '/API/v1/'), { authorization: alice }),
      ],
    ];
    const statuses: Record<string, number> = {};
    for (const [name, answer] of declined) statuses[name] = (await answer).status;
    expect(counter.taken).toBe(0);
    expect(statuses).toEqual({
      'two Authorization headers': 400,
      'no Authorization': 401,
      'an encoded path': 200,
      'a TRACE': 405,
      'a POST with a body': 200,
      'an upper-case route': 404,
    });
  });

  it('cuts the answer when the upstream body fails after its headers went out', async () => {
    const failures = () => svc.logs.filter((l) => l.includes('response terminated with an error')).length;
    const before = failures();
    const target = `/api/v1/connections/${streamed}/proxy/broken`;
    // Ten bytes of a declared thousand, then the upstream resets: the caller must not see a clean end.
    await expect(rawRequest(svc.url, target, { authorization: bearers['{alice}']! })).rejects.toThrow();
    expect(counter.taken).toBe(1);
    await expect.poll(failures).toBe(before + 1);
  });

  it('ends the upstream answer when the caller goes away mid-stream', async () => {
    const closedBefore = streamer.closed;
    const { hostname, port } = new URL(svc.url);
    const first = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: hostname,
          port: Number(port),
          path: `/api/v1/connections/${streamed}/proxy/slow`,
          headers: { authorization: bearers['{alice}']! },
        },
        (res) => {
          res.once('data', (chunk: Buffer) => {
            resolve(chunk.toString());
            req.destroy();
          });
        },
      );
      req.on('error', () => {});
      req.end();
      setTimeout(() => reject(new Error('no first chunk')), 5000);
    });
    expect(first).toContain('tick');
    expect(counter.taken).toBe(1);
    // The upstream's endless answer is closed on its side within moments, not left running.
    await expect.poll(() => streamer.closed, { timeout: 3000 }).toBe(closedBefore + 1);
  });

  it('leaves one access line and one metric per fast answer, query values redacted', async () => {
    const path = `/api/v1/connections/${connection}/proxy/counted`;
    const count = () =>
      requestsCounted(svc, 'method="GET",route="/api/v1/connections/:id/proxy/*",status="200"');
    const lines = () =>
      svc.logs.filter((l) => l.includes('"request completed"') && l.includes('/proxy/counted')).length;
    const before = { metric: await count(), lines: lines() };
    const r = await rawRequest(svc.url, `${path}?api_key=query-secret-value&top=5`, {
      authorization: bearers['{alice}']!,
    });
    expect(r.status).toBe(200);
    expect(counter.taken).toBe(1);
    await expect.poll(lines).toBe(before.lines + 1);
    expect(svc.logs.filter((l) => l.includes('query-secret-value'))).toEqual([]);
    await expect.poll(count).toBe(before.metric + 1);
    const line = JSON.parse(svc.logs.filter((l) => l.includes('/proxy/counted')).at(-1)!);
    expect(line).toMatchObject({
      msg: 'request completed',
      req: { method: 'GET', url: `${path}?api_key=[redacted]&top=[redacted]` },
      res: { statusCode: 200 },
    });
    expect(typeof line.reqId).toBe('string');
    expect(line.req.id).toBe(line.reqId);
    expect(typeof line.responseTime).toBe('number');
  });
});

/** A GET with two Authorization headers (fetch and node's client merge them). */
async function rawTwoAuthorizations(
  baseUrl: string,
  path: string,
  value: string,
): Promise<{ status: number }> {
  const r = await rawExchange(Number(new URL(baseUrl).port), [
    `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${value}\r\nauthorization: ${value}\r\nConnection: close\r\n\r\n`,
  ]);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(r.response)?.[1] ?? 0) };
}

interface Streamer {
  url: string;
  /** How many `/v1/slow` answers the upstream saw closed before they ended. */
  readonly closed: number;
  close(): Promise<void>;
}

/** An upstream with answers that fail midway (`/v1/broken`) or never end (`/v1/slow`). */
async function startStreamer(): Promise<Streamer> {
  let closed = 0;
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/broken')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('0123456789');
      setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('tick\n'), 20);
    res.write('tick\n');
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableFinished) closed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get closed() {
      return closed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
