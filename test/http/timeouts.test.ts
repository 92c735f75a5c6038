import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { generateKey } from '../../src/crypto/index.js';
import type { Database } from '../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { parseRawResponse, rawExchange } from '../support/raw-http.js';
import { startTestService, type TestService } from '../support/service.js';

const limits = { headersTimeoutMs: 500, requestTimeoutMs: 1500, keepAliveTimeoutMs: 500 };

/** Security 5: slow clients are bounded; long-lived responses are not. */
describe('request timeouts', () => {
  let database: TestDatabase;
  let svc: TestService;
  let port: number;
  let bearer: string;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({
      database,
      server: limits,
      serviceOptions: {
        background: false,
        routes: [
          (app) => {
            // A response streamed for longer than the request timeout (as the proxy streams).
            app.get('/test/slow-stream', async (_request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, { 'content-type': 'text/plain' });
              for (let i = 0; i < 6; i++) {
                reply.raw.write(`chunk ${i}\n`);
                await new Promise((r) => setTimeout(r, 500));
              }
              reply.raw.end('done\n');
            });
          },
        ],
      },
    });
    port = Number(new URL(svc.url).port);
    bearer = `Bearer ${await svc.token('alice')}`;
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const expect408 = (raw: string) => {
    const { status, headers, body } = parseRawResponse(raw);
    expect(status, raw).toBe(408);
    expect(headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(body)).toMatchObject({ status: 408, code: 'request_timeout' });
  };

  it('takes its limits from the config, with safe defaults', () => {
    const server = svc.service.app.server;
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([500, 1500, 500]);
    const defaults = validateConfig({
      encryption: { activeKey: 'k', keys: [{ id: 'k', key: generateKey() }] },
      auth: { mode: 'dev' },
    }).server;
    expect(defaults).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 72_000,
      bodyLimitBytes: 1024 * 1024,
    });
  });

  it.each([
    {
      name: 'headers trickled a line at a time',
      parts: [
        'GET /healthz HTTP/1.1\r\n',
        'Host: x\r\n',
        ...Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: 1\r\n`),
      ],
      gapMs: 100,
      within: 3000,
    },
    {
      name: 'headers trickled a byte at a time',
      parts: [
        ...'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n',
      ],
      gapMs: 50,
      within: 3000,
    },
    {
      name: 'a connection that sends nothing but the first byte',
      parts: ['G'],
      gapMs: 0,
      within: 3000,
    },
  ])('answers 408 problem+json and closes: $name', async ({ parts, gapMs, within }) => {
    const r = await rawExchange(port, parts, { gapMs, waitMs: 5000 });
    expect408(r.response);
    expect(r.closedAfterMs).toBeDefined();
    expect(r.closedAfterMs!).toBeLessThan(within);
  });

  it('closes a connection that never sends a byte', async () => {
    const r = await rawExchange(port, [], { waitMs: 5000 });
    expect(r.closedAfterMs).toBeDefined();
    expect(r.closedAfterMs!).toBeLessThan(3000);
  });

  it('answers 408 to a body trickled slower than the request timeout', async () => {
    const body = JSON.stringify({ integration: 'nope', returnTo: '/'.padEnd(40, 'x') });
    const head = `POST /api/v1/connections HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await rawExchange(port, [head, ...body], { gapMs: 100, waitMs: 6000 });
    expect408(r.response);
    expect(r.closedAfterMs!).toBeLessThan(4500);
  });

  it('never writes a 408 after an early answer to a request whose body still trickles', async () => {
    const head =
      'POST /api/v1/connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not.a.jwt\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n';
    const r = await rawExchange(port, [head, ...'{"integration":"x"}'], { gapMs: 150, waitMs: 5000 });
    expect(parseRawResponse(r.response).status).toBe(401);
    expect(r.response.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1);
    expect(r.closedAfterMs).toBeDefined();
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const r = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 5000 });
    expect(parseRawResponse(r.response).status).toBe(200);
    expect(r.closedAfterMs).toBeDefined();
    expect(r.closedAfterMs!).toBeLessThan(3500);
  });

  it('serves a prompt request with a body as usual', async () => {
    const res = await fetch(`${svc.url}/api/v1/connections`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'unknown-integration' }),
    });
    expect(res.status).toBe(404);
  });

  it('lets a streamed response run longer than the request timeout', async () => {
    const started = Date.now();
    const res = await fetch(`${svc.url}/test/slow-stream`);
    const text = await res.text();
    expect(Date.now() - started).toBeGreaterThan(limits.requestTimeoutMs + 500);
    expect(text).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\ndone\n');
  });

  it('keeps an SSE stream open past the request timeout, still delivering events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${svc.url}/api/v1/events`, {
      headers: { authorization: bearer },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const readUntil = async (needle: string, ms: number) => {
      const deadline = Date.now() + ms;
      while (!seen.includes(needle)) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        const next = await Promise.race([
          reader.read(),
          new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), left)),
        ]);
        if (next === 'timeout' || next.done) return false;
        seen += decoder.decode(next.value, { stream: true });
      }
      return true;
    };
    expect(await readUntil('retry:', 2000)).toBe(true);
    await new Promise((r) => setTimeout(r, limits.requestTimeoutMs * 2));
    const db = svc.service.ctx.store.db as Kysely<Database>;
    await svc.service.ctx.notifications.publish(db, 'alice', 'test.ping', { after: 'the request timeout' });
    expect(await readUntil('event: test.ping', 3000)).toBe(true);
    controller.abort();
  });
});
