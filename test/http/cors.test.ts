/**
 * CORS for `server.embedOrigins` only: a listed origin gets `Access-Control-Allow-Origin`
 * naming it on the JSON API (never credentials), any other origin gets no CORS header; the
 * proxy and the MCP gateway never answer CORS. Plus the config rule and popup mode's refusal
 * when nothing may embed the service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { answersCors } from '../../src/http/cors.js';
import { minimalYaml, problemsOf } from '../config/fixtures/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const platform = 'http://127.0.0.1:9';
const elsewhere = 'http://127.0.0.1:10';

describe('CORS for the host platform', () => {
  let database: TestDatabase;
  let svc: TestService;
  let closed: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({
      database,
      server: { embedOrigins: [platform] },
      serviceOptions: { background: false },
      providers: [
        {
          id: 'p',
          type: 'oauth2',
          authorizationEndpoint: 'https://p.example/a',
          tokenEndpoint: 'https://p.example/t',
          clientId: 'c',
        },
      ],
      integrations: [{ id: 'items', name: 'Items', provider: 'p', scopes: ['read'] }],
    });
    closed = await startTestService({
      database,
      authMode: 'dev',
      serviceOptions: { background: false },
      providers: [
        {
          id: 'p',
          type: 'oauth2',
          authorizationEndpoint: 'https://p.example/a',
          tokenEndpoint: 'https://p.example/t',
          clientId: 'c',
        },
      ],
      integrations: [{ id: 'items', name: 'Items', provider: 'p', scopes: ['read'] }],
    });
  });
  afterAll(async () => {
    await svc?.close();
    await closed?.close();
    await database?.drop();
  });

  const get = async (path: string, origin: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('origin', origin);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${await svc.token('cors-user')}`);
    return fetch(`${svc.url}${path}`, { ...init, headers });
  };
  const preflight = (path: string, origin: string, method = 'POST') =>
    fetch(`${svc.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it('names a listed origin on API answers, errors included, and never allows credentials', async () => {
    const ok = await get('/api/v1/integrations', platform);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(platform);
    expect(ok.headers.get('vary')).toMatch(/origin/i);
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    const refused = await get('/api/v1/connections', platform, {
      headers: { authorization: 'Bearer nonsense' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(platform);
  });

  it('answers a listed origin’s preflight with the methods and headers, and no one else’s', async () => {
    const ok = await preflight('/api/v1/connections', platform);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(platform);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    const other = await preflight('/api/v1/connections', elsewhere);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('gives an unlisted origin no CORS header at all', async () => {
    for (const origin of [
      elsewhere,
      'null',
      `${platform}.evil.example`,
      platform.replace('http:', 'https:'),
    ]) {
      const r = await get('/api/v1/integrations', origin);
      expect(r.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it('never answers CORS on the proxy or the MCP gateway, even for a listed origin', async () => {
    const proxied = await get(
      '/api/v1/connections/00000000-0000-4000-8000-000000000000/proxy/items',
      platform,
    );
    expect(proxied.status).toBe(404);
    expect(proxied.headers.get('access-control-allow-origin')).toBeNull();
    const proxyPreflight = await preflight(
      '/api/v1/connections/00000000-0000-4000-8000-000000000000/proxy/items',
      platform,
      'GET',
    );
    expect(proxyPreflight.headers.get('access-control-allow-origin')).toBeNull();
    const mcp = await get('/mcp', platform, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(mcp.headers.get('access-control-allow-origin')).toBeNull();
    expect(answersCors('/api/v1/connections/x/proxy')).toBe(false);
    expect(answersCors('/api/v1/connections/x/proxy/a/b')).toBe(false);
    expect(answersCors('/api/v1/connections/x/proxyish')).toBe(true);
    expect(answersCors('/mcp/items')).toBe(false);
  });

  it('with no embedOrigins: no CORS for anyone, and a popup Connect is refused', async () => {
    const r = await fetch(`${closed.url}/api/v1/integrations`, {
      headers: { origin: platform, authorization: `Bearer ${await closed.token('u')}` },
    });
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const ua = await signedInAgent(closed, 'popup-user');
    const page = await ua.get(`${closed.url}/connect/items?display=popup`);
    expect(page.status).toBe(404);
    expect(page.body).toContain('Embedding is not enabled');
    expect(page.body).not.toContain('confirm-connect');
  });

  it('the done page posts to the listed origins only, by a script its CSP allows by hash', async () => {
    const r = await fetch(
      `${svc.url}/embed/done?integration=items&outcome=connected&connection=00000000-0000-4000-8000-000000000000`,
    );
    expect(r.status).toBe(200);
    const body = await r.text();
    const csp = r.headers.get('content-security-policy') ?? '';
    const script = /<script>([\s\S]*?)<\/script>/.exec(body)?.[1] ?? '';
    const { createHash } = await import('node:crypto');
    expect(csp).toContain(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(script).not.toContain("'*'");
    expect(body).toContain(`data-origins="[&quot;${platform}&quot;]"`);
    const bad = await fetch(`${svc.url}/embed/done?integration=items&outcome=hacked`);
    expect(bad.status).toBe(400);
  });
});

describe('server.embedOrigins', () => {
  const parse = (origins: string) => parseConfig(`${minimalYaml()}server:\n  embedOrigins: ${origins}\n`, {});

  it('takes origins', () => {
    expect(parse('["https://platform.example", "http://127.0.0.1:8080"]').server.embedOrigins).toEqual([
      'https://platform.example',
      'http://127.0.0.1:8080',
    ]);
    expect(parseConfig(minimalYaml(), {}).server.embedOrigins).toEqual([]);
  });

  it.each([
    '"*"',
    '"null"',
    '"https://platform.example/"',
    '"https://platform.example/app"',
    '"ftp://x.example"',
    '"platform.example"',
  ])('refuses %s, naming the field', (origin) => {
    expect(problemsOf(() => parse(`[${origin}]`))).toEqual([
      expect.stringMatching(/^server\.embedOrigins\[0\]: must be an origin/),
    ]);
  });
});
