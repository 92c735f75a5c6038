/**
 * The OpenAPI document against the routes that exist and the answers they really give:
 * every registered route is in it (bar the short allow-list below), it is a valid 3.1 document
 * whose schemas compile, and real answers of a real service (real oidc-provider, real SQLite and
 * PostgreSQL) validate against its response schemas.
 *
 * A new route: register it with `documented(spec, handler)` (docs/api.md); a new JSON API
 * route: also add a call to `exercise` below, so its real answer is checked.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../src/http/openapi/document.js';
import { openApiPath } from '../../src/http/openapi/document.js';
import { withSpec } from '../../src/http/openapi/route-spec.js';
import type { RegisteredRoute } from '../../src/http/openapi/route-table.js';
import { getMe } from '../../src/http/routes/api.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import {
  fetchDocument,
  operationFor,
  ResponseValidator,
  type RoutedAnswer,
  tapRoutedAnswers,
} from '../support/openapi.js';
import { startTestService, type TestService } from '../support/service.js';

/**
 * Registered routes the document does not name, each with its reason. Nothing else may be missing.
 */
const notDocumented: Array<{ method: string; url: string; why: string }> = [
  { method: 'GET', url: '/assets/app.js', why: 'static asset of the pages, not an API' },
  { method: 'GET', url: '/assets/app.css', why: 'static asset of the pages, not an API' },
  { method: 'QUERY', url: '/api/v1/connections/:id/proxy/*', why: 'OpenAPI 3.1 has no QUERY operation' },
  { method: 'QUERY', url: '/api/v1/connections/:id/proxy', why: 'OpenAPI 3.1 has no QUERY operation' },
];

/** Fastify answers HEAD for every GET; the document says so once instead of per path. */
function isImplicitHead(route: RegisteredRoute, all: readonly RegisteredRoute[]): boolean {
  return route.method === 'HEAD' && all.some((r) => r.method === 'GET' && r.url === route.url);
}

function missingFromDocument(routes: readonly RegisteredRoute[], doc: OpenApiDocument): string[] {
  const allowed = (r: RegisteredRoute) =>
    notDocumented.some(
      (a) => a.url === r.url && (a.method === r.method || (a.method === 'GET' && r.method === 'HEAD')),
    );
  return routes
    .filter((r) => !allowed(r) && !isImplicitHead(r, routes))
    .filter((r) => operationFor(doc, r.method, r.url) === undefined)
    .map((r) => `${r.method} ${r.url}`);
}

describe('the OpenAPI document names every route', () => {
  let database: TestDatabase;
  const services: TestService[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
    await database?.drop();
  });

  it.each(['jwt', 'dev'] as const)(
    'with auth.mode %s: registered routes and documented operations match',
    async (mode) => {
      const svc = await startTestService({ database, authMode: mode, serviceOptions: { background: false } });
      services.push(svc);
      const routes = svc.service.app.routeTable.all();
      const doc = await fetchDocument(svc.url);
      expect(routes.length).toBeGreaterThan(30);
      expect(missingFromDocument(routes, doc)).toEqual([]);
      // And the other way: every documented operation is a route that exists.
      const registered = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
      const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method} ${path}`),
      );
      expect(documented.filter((d) => !registered.has(d))).toEqual([]);
      if (mode === 'dev') expect(doc.paths['/dev/login']?.post).toBeDefined();
    },
  );

  it('fails on a route registered without a spec (the check is not vacuous)', async () => {
    const svc = await startTestService({
      database,
      serviceOptions: {
        background: false,
        routes: [(app) => void app.get('/api/v1/undocumented', async () => ({ ok: true }))],
      },
    });
    services.push(svc);
    const doc = await fetchDocument(svc.url);
    expect(missingFromDocument(svc.service.app.routeTable.all(), doc)).toEqual(['GET /api/v1/undocumented']);
  });

  it('refuses to start when a route is registered with another route’s spec', async () => {
    const started = startTestService({
      database,
      serviceOptions: {
        background: false,
        routes: [(app) => void app.post(getMe.url, withSpec(getMe), async () => ({}))],
      },
    });
    await expect(started).rejects.toThrow(
      /route POST \/api\/v1\/me is registered with the spec of GET \/api\/v1\/me/,
    );
  });

  it('is a valid OpenAPI 3.1 document: unique operation ids, declared path parameters, compiling schemas', async () => {
    const svc = services[0]!;
    const doc = await fetchDocument(svc.url);
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe('nunq-connect');
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      'bearerAuth',
      'metricsToken',
      'sessionCookie',
    ]);
    const validator = new ResponseValidator(doc);
    const ids: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        ids.push(op.operationId);
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
        expect(declared.sort(), `${method} ${path}`).toEqual([...templated].sort());
        expect(op.responses.default?.content?.['application/problem+json']).toBeDefined();
        for (const p of op.parameters ?? []) validator.compile(p.schema);
        for (const c of Object.values(op.requestBody?.content ?? {})) validator.compile(c.schema);
        for (const r of Object.values(op.responses))
          for (const c of Object.values(r.content ?? {})) validator.compile(c.schema);
        for (const s of op.security)
          for (const name of Object.keys(s)) expect(doc.components.securitySchemes[name]).toBeDefined();
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    // The contract's routes are all there.
    for (const [method, path] of [
      ['get', '/api/v1/integrations'],
      ['post', '/api/v1/connections'],
      ['get', '/api/v1/connections/{id}'],
      ['post', '/api/v1/connections/{id}/reconnect'],
      ['delete', '/api/v1/connections/{id}'],
      ['post', '/api/v1/connections/{id}/proxy/{path}'],
      ['post', '/mcp'],
      ['post', '/mcp/{integrationId}'],
      ['get', '/oauth/callback'],
      ['get', '/connect/{integrationId}'],
      ['get', '/session'],
      ['get', '/healthz'],
      ['get', '/metrics'],
      ['get', '/oauth/client-metadata.json'],
      ['get', '/api/v1/openapi.json'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
  });

  it('serves a readable reference page without scripts or external assets', async () => {
    const svc = services[0]!;
    const page = await fetch(`${svc.url}/api/v1/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await page.text();
    expect(text).toContain('<code>POST /api/v1/connections</code>');
    expect(text).toContain('authorizationUrl');
    expect(text).not.toMatch(/<script/);
    expect(text).not.toMatch(/(?:src|href)="https?:/);
  });
});

describe.each(databaseKinds)('real answers agree with the document on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let doc: OpenApiDocument;
  const answers: RoutedAnswer[] = [];
  const user = `oa-${kind}-user`;

  beforeAll(async () => {
    lc = await startLifecycle({ kind, ports: 2, webhooks: false });
    svc = await lc.startService({ routes: [tapRoutedAnswers(answers)] });
    doc = await fetchDocument(svc.url);
  });
  afterAll(async () => {
    await lc?.close();
  });

  const as = async (who: string, role: 'admin' | undefined, path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${await svc.token(who, role)}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${svc.url}${path}`, { ...init, headers });
  };

  /** Calls every JSON API route, successes and the errors worth checking; returns nothing. */
  async function exercise(connectionId: string, notificationId: string): Promise<void> {
    const calls: Array<[string, 'admin' | undefined, string, RequestInit?]> = [
      [user, undefined, '/api/v1/me'],
      [user, undefined, '/api/v1/integrations'],
      [user, undefined, '/api/v1/connections'],
      [user, undefined, `/api/v1/connections/${connectionId}`],
      ['someone-else', undefined, `/api/v1/connections/${connectionId}`],
      [
        user,
        undefined,
        '/api/v1/connections',
        { method: 'POST', body: JSON.stringify({ integration: 'items' }) },
      ],
      [
        user,
        undefined,
        '/api/v1/connections',
        { method: 'POST', body: JSON.stringify({ integration: 'Bad!' }) },
      ],
      [
        user,
        undefined,
        '/api/v1/connections',
        { method: 'POST', body: JSON.stringify({ integration: 'nope' }) },
      ],
      [user, undefined, `/api/v1/connections/${connectionId}/reconnect`, { method: 'POST', body: '{}' }],
      [user, undefined, '/api/v1/notifications'],
      [user, undefined, `/api/v1/notifications/${randomUUID()}/read`, { method: 'POST' }],
      [user, undefined, `/api/v1/notifications/${notificationId}/read`, { method: 'POST' }],
      [user, 'admin', '/api/v1/admin/audit?limit=5'],
      [user, 'admin', '/api/v1/admin/audit?limit=0'],
      [user, undefined, '/api/v1/admin/providers'],
    ];
    for (const [who, role, path, init] of calls) await (await as(who, role, path, init)).arrayBuffer();
    // The admin operations, on a connection of another user (deleted at the end, which gives the
    // webhook endpoint added here a delivery to redeliver).
    const other = await lc.connect(svc, `${user}-2`);
    const hook = await as(user, 'admin', '/api/v1/admin/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: 'http://127.0.0.1:9/openapi-hook', secret: 'openapi-webhook-secret-0123' }),
    });
    const hookId = ((await hook.json()) as { id: string }).id;
    const adminCalls: Array<[string, RequestInit?]> = [
      [`/api/v1/admin/connections?status=active&user=${user}-2`],
      [`/api/v1/admin/connections/${other}`],
      [`/api/v1/admin/connections/${other}/refresh`, { method: 'POST' }],
      [`/api/v1/admin/connections/${randomUUID()}/refresh`, { method: 'POST' }],
      [`/api/v1/admin/audit?user=${user}-2&action=connection.created`],
      ['/api/v1/admin/audit?since=yesterday'],
      [
        '/api/v1/admin/webhooks',
        { method: 'POST', body: JSON.stringify({ url: 'ftp://x', secret: 'short' }) },
      ],
      [`/api/v1/admin/connections/${other}`, { method: 'DELETE' }],
      [`/api/v1/admin/webhooks/deliveries?endpoint=${hookId}`],
      [
        `/api/v1/admin/webhooks/${hookId}`,
        { method: 'PATCH', body: JSON.stringify({ events: null, enabled: true }) },
      ],
      [`/api/v1/admin/webhooks/${hookId}`, { method: 'PATCH', body: JSON.stringify({ secret: 'short' }) }],
      ['/api/v1/admin/templates/google'],
      ['/api/v1/admin/templates/entra/admin-consent?tenant=contoso.onmicrosoft.com&clientId=app-1'],
      ['/api/v1/admin/templates/entra/admin-consent?tenant=common&clientId=app-1'],
    ];
    for (const [path, init] of adminCalls) await (await as(user, 'admin', path, init)).arrayBuffer();
    // The run-time catalog: an admin adds, reads, edits and deletes a provider, an integration
    // and an MCP server, and previews an MCP server.
    const json = (method: string, body: unknown): RequestInit => ({ method, body: JSON.stringify(body) });
    const catalogCalls: Array<[string, RequestInit?]> = [
      [
        '/api/v1/admin/providers',
        json('POST', {
          id: 'oa-extra',
          type: 'oauth2',
          authorizationEndpoint: 'http://127.0.0.1:9/authorize',
          tokenEndpoint: 'http://127.0.0.1:9/token',
          clientId: 'extra',
          clientSecret: 'extra-client-secret-0123',
        }),
      ],
      ['/api/v1/admin/providers/oa-extra'],
      ['/api/v1/admin/providers/oa-extra', json('PATCH', { clientId: 'extra-2' })],
      [
        '/api/v1/admin/integrations',
        json('POST', { id: 'oa-extra-api', name: 'Extra', provider: 'oa-extra' }),
      ],
      ['/api/v1/admin/integrations/oa-extra-api'],
      ['/api/v1/admin/integrations/oa-extra-api', json('PATCH', { name: 'Extra API' })],
      [
        '/api/v1/admin/mcp-servers',
        json('POST', { id: 'oa-extra-mcp', name: 'Extra MCP', url: 'http://127.0.0.1:9/mcp' }),
      ],
      ['/api/v1/admin/mcp-servers/oa-extra-mcp'],
      ['/api/v1/admin/mcp-servers/oa-extra-mcp', json('PATCH', { name: 'Extra tools' })],
      ['/api/v1/admin/mcp-servers/preview', json('POST', { url: 'http://127.0.0.1:9/mcp' })],
      ['/api/v1/admin/providers/oa-extra', { method: 'DELETE' }],
      ['/api/v1/admin/mcp-servers/oa-extra-mcp', { method: 'DELETE' }],
      ['/api/v1/admin/integrations/oa-extra-api', { method: 'DELETE' }],
      ['/api/v1/admin/providers/oa-extra', { method: 'DELETE' }],
    ];
    for (const [path, init] of catalogCalls) await (await as(user, 'admin', path, init)).arrayBuffer();
    const [delivery] = await svc.service.ctx.webhooks.recentDeliveries({ endpointId: hookId });
    await (
      await as(user, 'admin', `/api/v1/admin/webhooks/deliveries/${delivery!.id}/redeliver`, {
        method: 'POST',
      })
    ).arrayBuffer();
    await (await as(user, 'admin', `/api/v1/admin/webhooks/${hookId}`, { method: 'DELETE' })).arrayBuffer();
    // Every documented JSON GET without parameters, as an administrator and anonymously.
    for (const [path, item] of Object.entries(doc.paths)) {
      const op = item.get;
      if (
        op === undefined ||
        path.includes('{') ||
        op.responses['200']?.content?.['application/json'] === undefined
      )
        continue;
      await (await as(user, 'admin', path)).arrayBuffer();
      await (await fetch(`${svc.url}${path}`)).arrayBuffer();
    }
    await (
      await as(user, undefined, `/api/v1/connections/${connectionId}`, { method: 'DELETE' })
    ).arrayBuffer();
  }

  it('every answer validates against its operation, and every JSON API operation was seen succeeding', async () => {
    const connectionId = await lc.connect(svc, user);
    // A notification to list (what a failed refresh leaves).
    const notificationId = await svc.service.ctx.notifications.create(svc.service.ctx.store.db, {
      userId: user,
      type: 'connection.needs_reauth',
      connectionId,
      data: { integration: 'items', reason: 'invalid_grant' },
    });
    const from = answers.length;
    await exercise(connectionId, notificationId);
    const seen = answers.slice(from);
    const validator = new ResponseValidator(doc);
    expect(seen.map((a) => validator.check(a)).filter((p) => p !== undefined)).toEqual([]);
    // Every JSON API operation answered with a documented success at least once.
    const succeeded = new Set(
      seen.filter((a) => a.status < 300).map((a) => `${a.method.toLowerCase()} ${openApiPath(a.route)}`),
    );
    const jsonApi = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(
          ([, op]) =>
            path.startsWith('/api/v1/') && !op.tags.includes('Proxy') && op.operationId !== 'streamEvents',
        )
        .filter(([, op]) => path !== '/api/v1/docs' && op.operationId !== 'getOpenApi')
        .map(([method]) => `${method} ${path}`),
    );
    expect(jsonApi.filter((op) => !succeeded.has(op))).toEqual([]);
    // The listing really held a connection and a notification (not only empty lists).
    const listed = seen.find(
      (a) => a.route === '/api/v1/connections' && a.method === 'GET' && a.status === 200,
    );
    expect(JSON.parse(listed?.body ?? '[]')).toHaveLength(1);
    const notifications = seen.find((a) => a.route === '/api/v1/notifications' && a.status === 200);
    expect(JSON.parse(notifications?.body ?? '[]')).toHaveLength(1);
  });

  it('the validator catches an answer that disagrees (the check is not vacuous)', () => {
    const validator = new ResponseValidator(doc);
    const good = { id: randomUUID(), name: 'x', kind: 'oauth', status: 'active' };
    const answer = (body: unknown): RoutedAnswer => ({
      method: 'GET',
      route: '/api/v1/integrations',
      path: '/api/v1/integrations',
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify(body),
    });
    expect(validator.check(answer([good]))).toBeUndefined();
    expect(validator.check(answer([{ ...good, status: 'connected' }]))).toMatch(/must be equal to one of/);
    expect(validator.check(answer([{ ...good, accessToken: 'x' }]))).toMatch(/additional properties/);
    expect(
      validator.check({
        ...answer({}),
        status: 404,
        contentType: 'application/problem+json',
        body: '{"status":404}',
      }),
    ).toMatch(/must have required property/);
  });
});
