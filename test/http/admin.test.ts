import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

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

  it('hides admin routes from non-admins (404 for the page; 403 for API bearer calls)', async () => {
    expect((await svc.api('alice', '/api/v1/admin/providers')).status).toBe(403);
    const page = await fetch(`${svc.url}/admin`, {
      headers: { authorization: `Bearer ${await svc.token('alice')}` },
    });
    expect(page.status).toBe(403);
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
