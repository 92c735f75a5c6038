import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

describe.each(databaseKinds)('admin surface on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({
      database,
      admins: ['root-user'],
      serviceOptions: { background: false },
      providers: [
        {
          id: 'acme',
          type: 'oauth2',
          authorizationEndpoint: 'https://acme.example/authorize',
          tokenEndpoint: 'https://acme.example/token',
          clientId: 'nunq',
          clientSecret: 'super-secret-client-value-123',
        },
      ],
      integrations: [{ id: 'acme-api', name: 'Acme', provider: 'acme', scopes: ['read'] }],
    });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const adminRoutes = [
    '/admin',
    '/api/v1/admin/providers',
    '/api/v1/admin/integrations',
    '/api/v1/admin/connections',
    '/api/v1/admin/audit',
  ];

  it.each(adminRoutes)(
    'answers 404 on %s to a signed-in non-admin, by bearer and by session',
    async (path) => {
      const byBearer = await svc.api('alice', path);
      expect(byBearer.status).toBe(404);
      expect(byBearer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await byBearer.json()).toMatchObject({ status: 404, code: 'not_found' });
      const ua = await signedInAgent(svc, 'alice');
      const bySession = await ua.get(`${svc.url}${path}`);
      expect(bySession.status).toBe(404);
      expect(JSON.parse(bySession.body)).toMatchObject({ status: 404, code: 'not_found' });
      // Nothing of the admin surface is in the refusal.
      expect(bySession.body).not.toContain('acme');
    },
  );

  it.each(adminRoutes.filter((p) => p !== '/admin'))(
    'answers 401 on %s without credentials',
    async (path) => {
      const r = await fetch(`${svc.url}${path}`);
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await r.json()).toMatchObject({ status: 401, code: 'unauthenticated' });
    },
  );

  it('answers 401 with the sign-in page on /admin without credentials', async () => {
    const r = await fetch(`${svc.url}/admin`, { redirect: 'manual' });
    expect(r.status).toBe(401);
    const body = await r.text();
    expect(body).toContain('Please sign in');
    expect(body).not.toContain('acme');
  });

  it('lists providers without their secrets, to admins by list or by role claim', async () => {
    for (const token of [await svc.token('root-user'), await svc.token('someone', 'admin')]) {
      const r = await fetch(`${svc.url}/api/v1/admin/providers`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(r.status).toBe(200);
      const text = await r.text();
      expect(JSON.parse(text)).toEqual([
        expect.objectContaining({ id: 'acme', type: 'oauth2', hasCredentials: true }),
      ]);
      expect(text).not.toContain('super-secret-client-value-123');
    }
  });

  it('serves the admin page and the audit log', async () => {
    const token = await svc.token('root-user');
    const page = await fetch(`${svc.url}/admin`, { headers: { authorization: `Bearer ${token}` } });
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).toContain('Administration');
    expect(body).toContain('acme-api');
    expect(body).not.toContain('super-secret-client-value-123');
    const audit = await fetch(`${svc.url}/api/v1/admin/audit?limit=5`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(audit.status).toBe(200);
    expect(Array.isArray(await audit.json())).toBe(true);
    const bad = await fetch(`${svc.url}/api/v1/admin/audit?limit=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bad.status).toBe(400);
  });
});
