import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimitCategory } from '../../src/config/index.js';
import { categoryOf } from '../../src/http/rate-limits.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { countFastRoutes, type FastRouteCounter } from '../support/fast-routes.js';
import { startTestService, type TestService } from '../support/service.js';

// The limits live in memory, per instance, and never touch the database: SQLite alone suffices.

/** One request of each category, sent with `inject` so each can come from any address. */
const routes: Array<{ category: RateLimitCategory; words: string; method: 'GET' | 'POST'; url: string }> = [
  { category: 'signIn', words: 'sign-in', method: 'GET', url: '/session?return_to=/' },
  { category: 'connect', words: 'Connect', method: 'GET', url: '/connect/nothing-here' },
  { category: 'callback', words: 'sign-in callback', method: 'GET', url: '/oauth/callback?state=s' },
  { category: 'api', words: 'API', method: 'GET', url: '/api/v1/integrations' },
  {
    category: 'proxy',
    words: 'proxy',
    method: 'GET',
    url: '/api/v1/connections/00000000-0000-4000-8000-000000000000/proxy/items',
  },
  { category: 'gateway', words: 'MCP gateway', method: 'POST', url: '/mcp' },
  { category: 'pages', words: 'page', method: 'GET', url: '/' },
];

const perAddress = 3;
const perUser = 5;
const tight = { windowSeconds: 60, perAddress, perUser };
const everyCategory = (limits: Record<string, unknown>) =>
  Object.fromEntries(routes.map((r) => [r.category, limits]));

function send(
  svc: TestService,
  route: (typeof routes)[number],
  from: string,
  bearer?: string,
): Promise<LightMyRequestResponse> {
  return svc.service.app.inject({
    method: route.method,
    url: route.url,
    remoteAddress: from,
    headers: {
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      ...(route.method === 'POST' ? { 'content-type': 'application/json' } : {}),
    },
    ...(route.method === 'POST' ? { payload: { jsonrpc: '2.0', id: 1, method: 'ping' } } : {}),
  });
}

/** A 429 problem+json with `rate_limited`, a detail naming the category and who, and Retry-After. */
function expectRateLimited(
  res: LightMyRequestResponse,
  detail: string,
  windowSeconds: number,
  limit: number,
) {
  expect(res.statusCode, res.body).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({ status: 429, code: 'rate_limited', title: 'Too Many Requests' });
  expect(body.detail).toMatch(new RegExp(`^${detail}; retry after \\d+ s\\.$`));
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(body.detail).toContain(`retry after ${retryAfter} s.`);
  expect(body.retryAfterSeconds).toBe(retryAfter);
  expect(res.headers['ratelimit-limit']).toBe(String(limit));
  expect(res.headers['ratelimit-remaining']).toBe('0');
  // Our security headers are on the refusal too.
  expect(res.headers['x-content-type-options']).toBe('nosniff');
}

async function refusals(svc: TestService, category: string, by: string): Promise<number> {
  const metric = await svc.service.ctx.metrics.rateLimited.get();
  return metric.values.find((v) => v.labels.category === category && v.labels.by === by)?.value ?? 0;
}

describe('which routes each category covers', () => {
  it.each([
    ['GET', '/session', 'signIn'],
    ['POST', '/session', 'signIn'],
    ['POST', '/dev/login', 'signIn'],
    ['GET', '/dev/login', 'pages'],
    ['GET', '/connect/:integrationId', 'connect'],
    ['POST', '/connect/:integrationId', 'connect'],
    ['POST', '/api/v1/connections', 'connect'],
    ['POST', '/api/v1/connections/:id/reconnect', 'connect'],
    ['POST', '/connections/:id/reconnect', 'connect'],
    ['GET', '/oauth/callback', 'callback'],
    ['GET', '/oauth/confirm/:id', 'callback'],
    ['POST', '/oauth/confirm/:id', 'callback'],
    ['POST', '/connections/:id/confirm/:confirmationId', 'callback'],
    ['GET', '/api/v1/connections', 'api'],
    ['GET', '/api/v1/connections/:id', 'api'],
    ['DELETE', '/api/v1/connections/:id', 'api'],
    ['GET', '/api/v1/events', 'api'],
    ['PATCH', '/api/v1/admin/providers/:id', 'api'],
    ['GET', '/api/v1/some-route-added-later', 'api'],
    ['GET', '/api/v1/connections/:id/proxy', 'proxy'],
    ['DELETE', '/api/v1/connections/:id/proxy/*', 'proxy'],
    ['POST', '/mcp', 'gateway'],
    ['GET', '/mcp/:integrationId', 'gateway'],
    ['GET', '/', 'pages'],
    ['POST', '/admin/webhooks', 'pages'],
    ['POST', '/logout', 'pages'],
    ['GET', undefined, 'pages'],
    ['GET', '/healthz', null],
    ['GET', '/metrics', null],
    ['GET', '/api/v1/openapi.json', null],
    ['GET', '/api/v1/docs', null],
    ['GET', '/assets/app.js', null],
    ['GET', '/oauth/client-metadata.json', null],
  ] as const)('%s %s: %s', (method, url, category) => {
    expect(categoryOf(method, url)).toBe(category);
  });
});

describe('rate limits', () => {
  let database: TestDatabase;
  let svc: TestService;
  /** The same limits with a two-second window, to see it reset. */
  let short: TestService;
  let off: TestService;
  let mixed: TestService;
  let behindProxy: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database, rateLimits: everyCategory(tight) });
    short = await startTestService({
      database,
      rateLimits: everyCategory({ windowSeconds: 2, perAddress, perUser }),
    });
    off = await startTestService({ database, rateLimits: { enabled: false, ...everyCategory(tight) } });
    mixed = await startTestService({
      database,
      rateLimits: {
        ...everyCategory(tight),
        api: { ...tight, enabled: false },
        proxy: { ...tight, perAddress: 0 },
        gateway: { ...tight, perUser: 0 },
      },
    });
    behindProxy = await startTestService({
      database,
      server: { trustProxy: true },
      rateLimits: { pages: tight },
    });
  });
  afterAll(async () => {
    for (const s of [svc, short, off, mixed, behindProxy]) await s?.close();
    await database?.drop();
  });

  describe.each(routes.map((r, i) => ({ ...r, i })))('$category ($method $url)', (route) => {
    const { category, words, i } = route;

    it('refuses an address past its limit, before identity; another address goes on', async () => {
      const from = `10.0.${i}.1`;
      const before = await refusals(svc, category, 'address');
      for (let n = 0; n < perAddress; n++) expect((await send(svc, route, from)).statusCode).not.toBe(429);
      const refused = await send(svc, route, from);
      expectRateLimited(refused, `Too many ${words} requests from this address`, 60, perAddress);
      // Refused before the bearer is looked at: a garbage token gets a 429, not a 401.
      expect((await send(svc, route, from, 'not-a-jwt')).statusCode).toBe(429);
      expect((await send(svc, route, `10.0.${i}.2`)).statusCode).not.toBe(429);
      expect(await refusals(svc, category, 'address')).toBe(before + 2);
    });

    it('refuses a user past its limit from any address; another user goes on', async () => {
      const user = `u-${category}`;
      const bearer = await svc.token(user);
      const before = await refusals(svc, category, 'user');
      for (let n = 0; n < perUser; n++) {
        expect((await send(svc, route, `10.1.${i}.${n + 1}`, bearer)).statusCode).not.toBe(429);
      }
      const refused = await send(svc, route, `10.1.${i}.100`, bearer);
      expectRateLimited(refused, `Too many ${words} requests for this user`, 60, perUser);
      expect((await send(svc, route, `10.1.${i}.100`, await svc.token(`${user}-other`))).statusCode).not.toBe(
        429,
      );
      expect(await refusals(svc, category, 'user')).toBe(before + 1);
    });

    it('counts again once the window has passed', async () => {
      const from = `10.2.${i}.1`;
      for (let n = 0; n < perAddress; n++) await send(short, route, from);
      const refused = await send(short, route, from);
      expectRateLimited(refused, `Too many ${words} requests from this address`, 2, perAddress);
      await sleep(2100);
      expect((await send(short, route, from)).statusCode).not.toBe(429);
    });

    it('limits nothing with rateLimits.enabled: false', async () => {
      const bearer = await off.token(`u-${category}`);
      for (let n = 0; n < perUser + perAddress + 2; n++) {
        expect((await send(off, route, '10.3.0.1', bearer)).statusCode).not.toBe(429);
      }
    });
  });

  it('a category with enabled: false is not limited; the others still are', async () => {
    const api = routes.find((r) => r.category === 'api')!;
    const pages = routes.find((r) => r.category === 'pages')!;
    for (let n = 0; n < perAddress + 2; n++)
      expect((await send(mixed, api, '10.4.0.1')).statusCode).toBe(401);
    for (let n = 0; n < perAddress; n++) await send(mixed, pages, '10.4.0.2');
    expect((await send(mixed, pages, '10.4.0.2')).statusCode).toBe(429);
  });

  it('0 turns one dimension off: proxy by user only, gateway by address only', async () => {
    const proxy = routes.find((r) => r.category === 'proxy')!;
    const gateway = routes.find((r) => r.category === 'gateway')!;
    const bearer = await mixed.token('u-mixed');
    // perAddress 0: one address, many users, no limit; one user, many addresses, limited.
    for (let n = 0; n < perAddress + 2; n++) {
      expect((await send(mixed, proxy, '10.5.0.1', await mixed.token(`u-${n}`))).statusCode).toBe(404);
    }
    for (let n = 0; n < perUser; n++) await send(mixed, proxy, `10.5.1.${n}`, bearer);
    expectRateLimited(
      await send(mixed, proxy, '10.5.1.99', bearer),
      'Too many proxy requests for this user',
      60,
      perUser,
    );
    // perUser 0: one user, many addresses, no limit; one address, limited.
    for (let n = 0; n < perUser + 2; n++) {
      expect((await send(mixed, gateway, `10.5.2.${n}`, bearer)).statusCode).not.toBe(429);
    }
    for (let n = 0; n < perAddress; n++) await send(mixed, gateway, '10.5.3.1');
    expect((await send(mixed, gateway, '10.5.3.1')).statusCode).toBe(429);
  });

  it('never limits health, metrics, the OpenAPI document, assets or the client metadata document', async () => {
    for (const url of [
      '/healthz',
      '/metrics',
      '/api/v1/openapi.json',
      '/assets/app.css',
      '/oauth/client-metadata.json',
    ]) {
      for (let n = 0; n < perAddress + perUser + 2; n++) {
        const res = await svc.service.app.inject({ method: 'GET', url, remoteAddress: '10.6.0.1' });
        expect(res.statusCode, url).not.toBe(429);
      }
    }
  });

  it('with server.trustProxy, the address is the X-Forwarded-For client, not the proxy', async () => {
    const page = (client: string, proxy: string) =>
      behindProxy.service.app.inject({
        method: 'GET',
        url: '/',
        remoteAddress: proxy,
        headers: { 'x-forwarded-for': client },
      });
    // Many clients behind one proxy: each has its own count.
    for (let n = 0; n < perAddress + 2; n++) {
      expect((await page(`203.0.113.${n}`, '10.7.0.1')).statusCode).not.toBe(429);
    }
    // One client through several proxies: one count.
    for (let n = 0; n < perAddress; n++) await page('198.51.100.7', `10.7.1.${n}`);
    expect((await page('198.51.100.7', '10.7.1.99')).statusCode).toBe(429);
  });
});

/**
 * The proxy's plain calls are answered by its fast route (`src/http/fast-routes.ts`), before
 * Fastify, which `inject` never reaches: the same limits over real HTTP, the client address
 * taken from X-Forwarded-For as `request.ip` gives it behind a trusted proxy.
 */
describe('rate limits on the proxy fast path (real HTTP)', () => {
  let database: TestDatabase;
  let svc: TestService;
  let fast: FastRouteCounter;
  const url = routes.find((r) => r.category === 'proxy')!.url;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({
      database,
      server: { trustProxy: true },
      rateLimits: { proxy: tight },
    });
    fast = countFastRoutes(svc.service.app);
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const call = async (client: string, userId: string) => {
    const res = await fetch(`${svc.url}${url}`, {
      headers: { authorization: `Bearer ${await svc.token(userId)}`, 'x-forwarded-for': client },
    });
    return { status: res.status, headers: res.headers, body: await res.text() };
  };

  it('refuses an address past its limit before identity, and a user past theirs from any address', async () => {
    fast.reset();
    for (let n = 0; n < perAddress; n++) expect((await call('198.51.100.1', `u-a${n}`)).status).toBe(404);
    const byAddress = await call('198.51.100.1', 'u-a-last');
    expect(byAddress.status, byAddress.body).toBe(429);
    expect(byAddress.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(byAddress.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(byAddress.headers.get('ratelimit-limit')).toBe(String(perAddress));
    expect(byAddress.headers.get('referrer-policy')).toBe('same-origin');
    expect(JSON.parse(byAddress.body)).toMatchObject({
      code: 'rate_limited',
      detail: expect.stringContaining('Too many proxy requests from this address'),
    });
    // A bad bearer from that address is refused by the count, before its token is looked at.
    const flood = await fetch(`${svc.url}${url}`, {
      headers: { authorization: 'Bearer nonsense', 'x-forwarded-for': '198.51.100.1' },
    });
    expect(flood.status).toBe(429);

    for (let n = 0; n < perUser; n++) expect((await call(`203.0.113.${n}`, 'u-spread')).status).toBe(404);
    const byUser = await call('203.0.113.99', 'u-spread');
    expect(byUser.status, byUser.body).toBe(429);
    expect(JSON.parse(byUser.body).detail).toContain('Too many proxy requests for this user');
    // Every one of them went the fast way.
    expect(fast.taken).toBe(perAddress + 2 + perUser + 1);
  });
});
