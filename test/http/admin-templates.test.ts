/**
 * `GET /api/v1/admin/templates[/:id]` and Entra's admin-consent link: admins only (a signed-in
 * non-admin gets 404, no credentials 401), the redirect URI to register computed from
 * server.publicUrl, bad input a 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

describe('admin templates API, on sqlite', () => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database, admins: ['root-user'], serviceOptions: { background: false } });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const admin = (path: string) => svc.api('root-user', path);
  const routes = [
    '/api/v1/admin/templates',
    '/api/v1/admin/templates/google',
    '/api/v1/admin/templates/entra/admin-consent?tenant=contoso.onmicrosoft.com&clientId=c',
  ];

  it.each(routes)('%s: 404 to a signed-in non-admin, 401 without credentials', async (path) => {
    const user = await svc.api('alice', path);
    expect(user.status).toBe(404);
    expect(await user.json()).toMatchObject({ status: 404, code: 'not_found' });
    const none = await fetch(`${svc.url}${path}`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('lists every template with its type, quirks, redirect URI to register and suggested integrations', async () => {
    const r = await admin('/api/v1/admin/templates');
    expect(r.status).toBe(200);
    const list = (await r.json()) as Array<Record<string, unknown>>;
    expect(list.map((t) => t.id)).toEqual([
      'entra',
      'google',
      'github',
      'atlassian',
      'slack',
      'salesforce',
      'hubspot',
      'notion',
      'linear',
      'dropbox',
      'box',
      'zoom',
    ]);
    for (const t of list) {
      expect(t).toMatchObject({
        redirectUri: `${svc.url}/oauth/callback`,
        type: expect.stringMatching(/^(entra|oidc|oauth2)$/),
      });
      expect((t.quirks as string[]).length).toBeGreaterThan(0);
      expect((t.integrations as unknown[]).length).toBeGreaterThan(0);
    }
    expect(list.find((t) => t.id === 'entra')).toMatchObject({
      requiredFields: ['id', 'clientId', 'clientSecret', 'tenant'],
      adminConsent: '/api/v1/admin/templates/entra/admin-consent',
      integrations: [
        { id: 'sharepoint', api: { baseUrl: 'https://graph.microsoft.com' } },
        { id: 'onedrive' },
        { id: 'business-central', api: { baseUrl: 'https://api.businesscentral.dynamics.com' } },
      ],
    });
  });

  it('shows one template, and 404 for an unknown one', async () => {
    const google = await (await admin('/api/v1/admin/templates/google')).json();
    expect(google).toMatchObject({
      id: 'google',
      type: 'oidc',
      endpoints: { issuer: 'https://accounts.google.com' },
      authorizationParams: { access_type: 'offline', prompt: 'consent' },
    });
    const unknown = await admin('/api/v1/admin/templates/myspace');
    expect(unknown.status).toBe(404);
    const bad = await admin('/api/v1/admin/templates/NOT_AN_ID');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      errors: [{ path: 'path.id', message: 'must be a template id' }],
    });
  });

  it('builds the Entra admin-consent link for a tenant, back to the admin console by default', async () => {
    const r = await admin(
      '/api/v1/admin/templates/entra/admin-consent?tenant=contoso.onmicrosoft.com&clientId=app-1&scope=https%3A%2F%2Fgraph.microsoft.com%2FSites.Read.All',
    );
    expect(r.status).toBe(200);
    const url = new URL(((await r.json()) as { url: string }).url);
    expect(`${url.origin}${url.pathname}`).toBe(
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/adminconsent',
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: 'app-1',
      redirect_uri: `${svc.url}/admin`,
      scope: 'https://graph.microsoft.com/Sites.Read.All',
    });
  });

  it.each([
    ['tenant=common&clientId=c', 'query.tenant'],
    ['clientId=c', 'query.tenant'],
    ['tenant=contoso.onmicrosoft.com', 'query.clientId'],
    ['tenant=contoso.onmicrosoft.com&clientId=c&redirectUri=javascript:alert(1)', 'query.redirectUri'],
  ])('admin-consent with %s: 400 naming %s', async (query, path) => {
    const r = await admin(`/api/v1/admin/templates/entra/admin-consent?${query}`);
    expect(r.status).toBe(400);
    const body = (await r.json()) as { errors: Array<{ path: string }> };
    expect(body.errors.map((e) => e.path)).toEqual([path]);
  });
});
