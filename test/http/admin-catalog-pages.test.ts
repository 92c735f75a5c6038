import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import { databaseKinds } from '../support/databases.js';
import {
  type Lifecycle,
  lifecycleClientSecret,
  proxyPath,
  startLifecycle,
  waitUntil,
} from '../support/lifecycle.js';
import { type TestService, testJwtSecret } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

const providerSecret = 'console-provider-secret-0123456789abc';
const rotatedSecret = 'console-rotated-secret-abcdefghijklmn';
const typedSecret = 'console-typed-secret-never-echoed-xyz';
const mcpSecret = 'console-mcp-client-secret-0123456789';
const webhookSecret = 'console-webhook-secret-0123456789ab';
const rotatedWebhookSecret = 'console-webhook-rotated-9876543210';
const secrets = [
  providerSecret,
  rotatedSecret,
  typedSecret,
  mcpSecret,
  webhookSecret,
  rotatedWebhookSecret,
  lifecycleClientSecret,
];

/**
 * The console's catalog pages (issue 10): run-time providers, integrations and MCP servers are
 * edited, enabled, disabled and deleted there through the admin API's own actions (same checks,
 * same refusals, same audit rows), against a real oidc-provider and demo API, on SQLite and
 * PostgreSQL. Config-file entries are read-only; secrets are write-only on every page.
 */
describe.each(databaseKinds)('the console edits the run-time catalog on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let root: UserAgent;
  let csrf: string;
  /** Every page body the console answered, for the secrets scan at the end. */
  const bodies: string[] = [];

  const get = async (path: string) => {
    const r = await root.get(`${svc.url}${path}`);
    bodies.push(r.body);
    return r;
  };
  const post = async (path: string, form: Record<string, string>, withCsrf = true) => {
    const r = await root.post(`${svc.url}${path}`, withCsrf ? { _csrf: csrf, ...form } : form);
    bodies.push(r.body);
    return r;
  };
  /** The etag a page's form carries (its hidden field, as the HTML writes it). */
  const etagOn = (body: string) => {
    const m = /name="etag" value="([^"]*)"/.exec(body);
    if (m === null) throw new Error('no etag field on the page');
    return m[1]!.replaceAll('&quot;', '"');
  };
  const api = async (path: string, init: { method?: string; body?: unknown } = {}) => {
    const r = await fetch(`${svc.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${await mintToken(testJwtSecret, { sub: 'root', role: 'admin' })}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await r.text();
    bodies.push(text);
    return { status: r.status, json: text === '' ? undefined : JSON.parse(text) };
  };
  const audit = (action: string, target: string) =>
    svc.service.ctx.store.db
      .selectFrom('audit_log')
      .select(['actor', 'data'])
      .where('action', '=', action)
      .where('target_id', '=', target)
      .execute();
  const offered = async (userId: string) =>
    ((await (await svc.api(userId, '/api/v1/integrations')).json()) as Array<{ id: string }>).map(
      (i) => i.id,
    );

  beforeAll(async () => {
    lc = await startLifecycle({ kind, ports: 2, webhooks: false });
    svc = await lc.startService({ background: false });
    root = await signedInAgent(
      { url: svc.url, token: (sub) => mintToken(testJwtSecret, { sub, role: 'admin' }) },
      'root',
    );
    csrf = JSON.parse((await root.get(`${svc.url}/api/v1/me`)).body).csrfToken;
  });
  afterAll(async () => {
    await lc?.close();
  });

  it('lists integrations with status, provider, connections and source, and adds one (errors beside the fields, what was typed kept)', async () => {
    const list = await get('/admin/integrations');
    expect(list.status).toBe(200);
    expect(list.body).toContain('aria-current="page">Integrations</a>');
    expect(list.body).toMatch(
      /data-testid="integration-row-items">.*<code>demo<\/code><\/td><td>enabled<\/td><td>0<\/td><td>config file<\/td>/,
    );

    const bad = await post('/admin/integrations', {
      id: 'Bad Id',
      name: '',
      provider: 'demo',
      scopes: 'openid',
      apiBaseUrl: 'not a url',
      groups: '',
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('<code>body.id</code>');
    expect(bad.body).toContain('<code>body.name</code>');
    expect(bad.body).toContain('<code>body.api.baseUrl</code>');
    expect(bad.body).toMatch(/id="f-id"[^>]*value="Bad Id"[^>]*aria-invalid="true"/);
    expect(bad.body).toContain('<p class="field-error" id="f-id-error">');
    expect(bad.body).toContain('value="not a url"');
    expect((await api('/api/v1/admin/integrations')).json).toHaveLength(1);

    const added = await post('/admin/integrations', {
      id: 'items2',
      name: 'Items two',
      provider: 'demo',
      scopes: 'openid profile email offline_access items:read',
      apiBaseUrl: lc.api.url,
      groups: '',
    });
    expect(added.status).toBe(303);
    expect(added.headers.get('location')).toBe('/admin/integrations/items2?done=added');
    expect((await api('/api/v1/admin/integrations/items2')).json).toMatchObject({
      name: 'Items two',
      provider: 'demo',
      source: 'admin',
      enabled: true,
      scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
    });
    expect(await audit('admin.integration_created', 'items2')).toEqual([
      { actor: 'root', data: expect.stringContaining('"via":"console"') },
    ]);
  });

  it('edits a run-time integration; a stale etag says someone else edited it and changes nothing; no CSRF token, no change', async () => {
    const page = await get('/admin/integrations/items2');
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-testid="edit-form"');
    const etag = etagOn(page.body);
    const form = {
      name: 'Items 2',
      description: 'Second list',
      provider: 'demo',
      scopes: 'openid profile email offline_access items:read',
      apiBaseUrl: lc.api.url,
      groups: '',
    };
    const saved = await post('/admin/integrations/items2', { ...form, etag });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/admin/integrations/items2?done=saved');
    expect((await api('/api/v1/admin/integrations/items2')).json).toMatchObject({
      name: 'Items 2',
      description: 'Second list',
    });
    const row = await audit('admin.integration_updated', 'items2');
    expect(row).toHaveLength(1);
    expect(JSON.parse(row[0]!.data)).toMatchObject({ kind: 'oauth', via: 'console', enabled: true });

    const stale = await post('/admin/integrations/items2', { ...form, name: 'Overwritten', etag });
    expect(stale.status).toBe(409);
    expect(stale.body).toContain('Someone else edited this entry');
    expect(stale.body).toContain('value="Overwritten"');
    expect((await api('/api/v1/admin/integrations/items2')).json.name).toBe('Items 2');

    const forged = await post(
      '/admin/integrations/items2',
      { ...form, name: 'No token', etag: etagOn((await get('/admin/integrations/items2')).body) },
      false,
    );
    expect(forged.status).toBe(403);
    expect((await api('/api/v1/admin/integrations/items2')).json.name).toBe('Items 2');
    expect(await audit('admin.integration_updated', 'items2')).toHaveLength(1);
  });

  it('disable asks first, counting connections; then the user neither sees nor connects it and the proxy answers integration_disabled; enable restores it', async () => {
    const connectionId = await lc.connect(svc, 'bob', 'alice', 'items2');
    expect((await svc.api('bob', proxyPath(connectionId))).status).toBe(200);

    const ask = await get('/admin/integrations/items2/disable');
    expect(ask.status).toBe(200);
    expect(ask.body).toContain('1 connection is kept but unusable until re-enabled.');
    expect((await post('/admin/integrations/items2/disable', {}, false)).status).toBe(403);
    expect((await api('/api/v1/admin/integrations/items2')).json.enabled).toBe(true);
    const off = await post('/admin/integrations/items2/disable', { etag: etagOn(ask.body) });
    expect(off.status).toBe(303);
    expect(off.headers.get('location')).toBe('/admin/integrations/items2?done=disabled');

    await waitUntil('the catalog caches to expire', async () => !(await offered('bob')).includes('items2'));
    expect((await svc.api('bob', '/connect/items2')).status).toBe(404);
    let refused: { status: number; code?: string } = { status: 0 };
    await waitUntil('the proxy to refuse the disabled integration', async () => {
      const r = await svc.api('bob', proxyPath(connectionId));
      refused = { status: r.status, code: ((await r.json()) as { code?: string }).code };
      return r.status !== 200;
    });
    expect(refused).toEqual({ status: 409, code: 'integration_disabled' });
    expect(await svc.service.ctx.connections.countForIntegration('items2')).toBe(1);
    const page = await get('/admin/integrations/items2?done=disabled');
    expect(page.body).toContain('Disabled: not offered to users');
    expect(page.body).toContain('data-testid="enable"');
    expect(page.body).not.toContain('data-testid="disable"');

    const on = await post('/admin/integrations/items2/enable', { etag: etagOn(page.body) });
    expect(on.status).toBe(303);
    await waitUntil('the proxy to take the connection again', async () => {
      return (await svc.api('bob', proxyPath(connectionId))).status === 200;
    });
    expect(await offered('bob')).toContain('items2');
  });

  it('delete asks first, counting connections; then each is revoked at the provider and removed', async () => {
    const connectionId = (
      (await (await svc.api('bob', '/api/v1/connections')).json()) as Array<{
        id: string;
        integration: string;
      }>
    ).find((c) => c.integration === 'items2')!.id;
    const ask = await get('/admin/integrations/items2/delete');
    expect(ask.body).toContain('1 connection will be revoked at the provider and removed.');
    expect((await post('/admin/integrations/items2/delete', {}, false)).status).toBe(403);
    expect(await svc.service.ctx.connections.countForIntegration('items2')).toBe(1);

    const deleted = await post('/admin/integrations/items2/delete', {});
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get('location')).toBe('/admin/integrations?deleted=items2');
    expect((await get('/admin/integrations?deleted=items2')).body).toContain(
      'Deleted items2 and its connections.',
    );
    expect(await svc.service.ctx.connections.countForIntegration('items2')).toBe(0);
    expect((await api('/api/v1/admin/integrations/items2')).status).toBe(404);
    const [gone] = await audit('connection.deleted', connectionId);
    expect(JSON.parse(gone!.data)).toMatchObject({ integration: 'items2', revocation: 'revoked' });
    const [removed] = await audit('admin.integration_deleted', 'items2');
    expect(JSON.parse(removed!.data)).toMatchObject({ connectionsRemoved: 1, via: 'console' });
  });

  it('edits a provider by its type; the secret is write-only: empty keeps it, a new one replaces it, clear removes it, a typed one is never echoed', async () => {
    const created = await api('/api/v1/admin/providers', {
      method: 'POST',
      body: {
        id: 'legacy',
        type: 'oauth2',
        authorizationEndpoint: 'https://legacy.example/authorize',
        tokenEndpoint: 'https://legacy.example/token',
        clientId: 'nunq',
        clientSecret: providerSecret,
      },
    });
    expect(created.status).toBe(201);
    const page = await get('/admin/providers/legacy');
    expect(page.body).toContain('<label for="f-tokenEndpoint">Token endpoint</label>');
    expect(page.body).not.toContain('f-issuer" name="issuer" value="https');
    expect(page.body).toMatch(/Currently set, changed at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(page.body).toContain('<input type="password" id="f-clientSecret" name="clientSecret" value=""');
    const form = {
      authorizationEndpoint: 'https://legacy.example/authorize',
      tokenEndpoint: 'https://legacy.example/token',
      revocationEndpoint: '',
      userinfoEndpoint: '',
      issuer: '',
      clientId: 'nunq-2',
      clientAuthMethod: 'client_secret_basic',
      clientSecret: '',
    };
    const kept = await post('/admin/providers/legacy', { ...form, etag: etagOn(page.body) });
    expect(kept.status).toBe(303);
    expect(await svc.service.ctx.catalog.providerCredentials('legacy')).toEqual({
      clientSecret: providerSecret,
    });
    expect((await api('/api/v1/admin/providers/legacy')).json.clientId).toBe('nunq-2');

    let etag = etagOn((await get('/admin/providers/legacy')).body);
    const bad = await post('/admin/providers/legacy', {
      ...form,
      tokenEndpoint: 'not a url',
      clientSecret: typedSecret,
      etag,
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('<code>body.tokenEndpoint</code>');
    expect(bad.body).toContain('id="f-tokenEndpoint-error"');
    expect(bad.body).toContain('value="not a url"');
    expect(await svc.service.ctx.catalog.providerCredentials('legacy')).toEqual({
      clientSecret: providerSecret,
    });

    const rotated = await post('/admin/providers/legacy', { ...form, clientSecret: rotatedSecret, etag });
    expect(rotated.status).toBe(303);
    expect(await svc.service.ctx.catalog.providerCredentials('legacy')).toEqual({
      clientSecret: rotatedSecret,
    });

    etag = etagOn((await get('/admin/providers/legacy')).body);
    const unclearable = await post('/admin/providers/legacy', { ...form, clearSecret: 'on', etag });
    expect(unclearable.status).toBe(400);
    expect(unclearable.body).toContain('required when clientAuthMethod is client_secret_basic');
    const cleared = await post('/admin/providers/legacy', {
      ...form,
      clientAuthMethod: 'none',
      clearSecret: 'on',
      etag,
    });
    expect(cleared.status).toBe(303);
    expect(await svc.service.ctx.catalog.providerCredentials('legacy')).toEqual({});
    expect((await get('/admin/providers/legacy')).body).toContain('Currently not set.');
    const [first] = await audit('admin.provider_updated', 'legacy');
    expect(JSON.parse(first!.data)).toMatchObject({ via: 'console' });
  });

  it('refuses to delete a provider integrations use, listing them readably; disabling one counts its integrations’ connections', async () => {
    await api('/api/v1/admin/integrations', {
      method: 'POST',
      body: { id: 'legacy-api', name: 'Legacy API', provider: 'legacy' },
    });
    const ask = await get('/admin/providers/legacy/delete');
    expect(ask.body).toContain('It is used by 1 integration (legacy-api)');
    const refused = await post('/admin/providers/legacy/delete', {});
    expect(refused.status).toBe(409);
    expect(refused.body).toContain('Nothing was deleted: the provider is used by these integrations.');
    expect(refused.body).toContain('<a href="/admin/integrations/legacy-api">legacy-api</a>');
    expect((await api('/api/v1/admin/providers/legacy')).status).toBe(200);

    const askDisable = await get('/admin/providers/legacy/disable');
    expect(askDisable.body).toContain('0 connections are kept but unusable until re-enabled.');
    expect(askDisable.body).toContain('its integrations (legacy-api)');
    await post('/admin/providers/legacy/disable', { etag: etagOn(askDisable.body) });
    expect((await api('/api/v1/admin/providers/legacy')).json.enabled).toBe(false);
    expect((await get('/admin/integrations/legacy-api')).body).toContain(
      'Enabled, but not offered: its provider is disabled',
    );
  });

  it('edits an MCP server: its fields, a write-only client secret, and its switch', async () => {
    const created = await api('/api/v1/admin/mcp-servers', {
      method: 'POST',
      body: {
        id: 'tracker',
        name: 'Tracker',
        url: 'https://mcp.tracker.example/mcp',
        clientId: 'pre',
        clientSecret: mcpSecret,
      },
    });
    expect(created.status).toBe(201);
    const page = await get('/admin/mcp-servers/tracker');
    expect(page.body).toContain('value="https://mcp.tracker.example/mcp"');
    const saved = await post('/admin/mcp-servers/tracker', {
      name: 'Issue tracker',
      description: '',
      url: 'https://mcp.tracker.example/mcp',
      scopes: 'read write',
      groups: 'eng, ops',
      clientId: 'pre',
      clientSecret: '',
      clientAuthMethod: '',
      pkce: 'on',
      etag: etagOn(page.body),
    });
    expect(saved.status).toBe(303);
    expect((await api('/api/v1/admin/mcp-servers/tracker')).json).toMatchObject({
      name: 'Issue tracker',
      scopes: ['read', 'write'],
      groups: ['eng', 'ops'],
      pkce: 'assume-s256',
      hasClientSecret: true,
    });
    expect(await svc.service.ctx.catalog.integrationCredentials('tracker')).toEqual({
      clientSecret: mcpSecret,
    });
    const refusedUrl = await post('/admin/mcp-servers/tracker', {
      name: 'Issue tracker',
      url: 'http://169.254.169.254/mcp',
      clientId: 'pre',
      etag: etagOn((await get('/admin/mcp-servers/tracker')).body),
    });
    expect(refusedUrl.status).toBe(400);
    expect(refusedUrl.body).toContain('is refused by the outbound policy');
    const ask = await get('/admin/mcp-servers/tracker/disable');
    expect((await post('/admin/mcp-servers/tracker/disable', { etag: etagOn(ask.body) })).status).toBe(303);
    expect((await api('/api/v1/admin/mcp-servers/tracker')).json.enabled).toBe(false);
    expect((await post('/admin/mcp-servers/tracker/delete', {})).status).toBe(303);
    expect((await api('/api/v1/admin/mcp-servers/tracker')).status).toBe(404);
  });

  it('shows config-file entries read-only, with no control; a POST to one answers 409 and changes nothing', async () => {
    for (const path of ['/admin/providers/demo', '/admin/integrations/items']) {
      const page = await get(path);
      expect(page.status).toBe(200);
      expect(page.body).toContain('data-testid="from-config"');
      expect(page.body).toContain('From the config file');
      expect(page.body).not.toContain('<form method="post" action="/admin/');
      expect(page.body).not.toContain('Disable…');
      for (const action of ['', '/enable', '/disable', '/delete']) {
        const r = await post(`${path}${action}`, { etag: '"1"', name: 'Changed', clientId: 'changed' });
        expect(r.status, `${path}${action}`).toBe(409);
        expect(r.body).toContain('This entry comes from the config file: nothing was changed.');
      }
      expect((await get(`${path}/disable`)).status).toBe(409);
    }
    expect((await api('/api/v1/admin/providers/demo')).json).toMatchObject({
      clientId: 'nunq',
      enabled: true,
    });
    expect((await api('/api/v1/admin/integrations/items')).json).toMatchObject({
      name: 'Items',
      enabled: true,
    });
  });

  it('edits a webhook endpoint added at run time: URL, events, enabled, a rotated secret never shown', async () => {
    const created = await api('/api/v1/admin/webhooks', {
      method: 'POST',
      body: { url: 'http://127.0.0.1:9/hooks/a', secret: webhookSecret },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const row = () =>
      svc.service.ctx.store.db
        .selectFrom('webhook_endpoints')
        .select(['secret_sealed', 'enabled'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    const before = await row();
    const list = await get('/admin/webhooks');
    expect(list.body).toContain(`href="/admin/webhooks/${id}"`);
    const page = await get(`/admin/webhooks/${id}`);
    expect(page.body).toContain('name="secret" value=""');
    const short = await post(`/admin/webhooks/${id}`, {
      url: 'http://127.0.0.1:9/hooks/b',
      secret: 'too-short',
      events: 'connection.deleted',
    });
    expect(short.status).toBe(400);
    expect(short.body).toContain('<code>body.secret</code>');
    expect(short.body).toContain('value="http://127.0.0.1:9/hooks/b"');
    expect(short.body).not.toContain('too-short');
    expect((await row()).secret_sealed).toBe(before.secret_sealed);

    const saved = await post(`/admin/webhooks/${id}`, {
      url: 'http://127.0.0.1:9/hooks/b',
      secret: rotatedWebhookSecret,
      events: 'connection.deleted',
    });
    expect(saved.status).toBe(303);
    const after = await row();
    expect(after.secret_sealed).not.toBe(before.secret_sealed);
    expect(after.enabled).toBe(0);
    expect((await api('/api/v1/admin/webhooks')).json).toContainEqual(
      expect.objectContaining({
        id,
        url: 'http://127.0.0.1:9/hooks/b',
        events: ['connection.deleted'],
        enabled: false,
      }),
    );
    const [audited] = await audit('admin.webhook_updated', id);
    expect(JSON.parse(audited!.data)).toMatchObject({ secret: 'rotated', enabled: false });
    expect(audited!.data).not.toContain(rotatedWebhookSecret);

    const viaApi = await api(`/api/v1/admin/webhooks/${id}`, { method: 'PATCH', body: { enabled: true } });
    expect(viaApi.status).toBe(200);
    expect(viaApi.json).toMatchObject({ enabled: true, url: 'http://127.0.0.1:9/hooks/b' });
    expect((await api('/api/v1/admin/webhooks/wh_nope', { method: 'PATCH', body: {} })).status).toBe(404);
    expect(
      (
        await api(`/api/v1/admin/webhooks/${id}`, {
          method: 'PATCH',
          body: { url: 'http://169.254.169.254/x' },
        })
      ).status,
    ).toBe(400);
  });

  it('answers 404 to a signed-in non-admin on every console page and form of the route table, and changes nothing', async () => {
    const routes = svc.service.app.routeTable
      .all()
      .filter((r) => r.url.startsWith('/admin') && (r.method === 'GET' || r.method === 'POST'));
    for (const [method, url] of [
      ['GET', '/admin/integrations'],
      ['POST', '/admin/integrations'],
      ['GET', '/admin/providers/:id'],
      ['POST', '/admin/providers/:id'],
      ['POST', '/admin/mcp-servers/:id/enable'],
      ['GET', '/admin/integrations/:id/disable'],
      ['POST', '/admin/integrations/:id/disable'],
      ['GET', '/admin/integrations/:id/delete'],
      ['POST', '/admin/integrations/:id/delete'],
      ['GET', '/admin/webhooks/:id'],
      ['POST', '/admin/webhooks/:id'],
    ]) {
      expect(routes.map((r) => `${r.method} ${r.url}`)).toContain(`${method} ${url}`);
    }
    const user = await signedInAgent(svc, 'mallory');
    const userCsrf = JSON.parse((await user.get(`${svc.url}/api/v1/me`)).body).csrfToken as string;
    const bearer = await svc.token('mallory');
    for (const { method, url } of routes) {
      const path = url
        .replace(/\/webhooks\/deliveries\/:id/, `/webhooks/deliveries/${randomUUID()}`)
        .replace(/\/webhooks\/:id/, '/webhooks/wh_x')
        .replace(/\/connections\/:id/, `/connections/${randomUUID()}`)
        .replace(/:id/, url.startsWith('/admin/providers') ? 'legacy' : 'legacy-api')
        .replace(/\?.*$/, '');
      const r =
        method === 'GET'
          ? await user.get(`${svc.url}${path}`)
          : await user.post(`${svc.url}${path}`, { _csrf: userCsrf, etag: '"1"', name: 'Mallory' });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body).not.toContain('Administration');
      const byBearer = await fetch(`${svc.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(byBearer.status, `bearer ${method} ${path}`).toBe(404);
    }
    expect((await api('/api/v1/admin/integrations/legacy-api')).json).toMatchObject({
      name: 'Legacy API',
      enabled: true,
    });
  });

  it('never shows a secret: not in any page or answer of this suite, nor in the audit log', async () => {
    expect(bodies.length).toBeGreaterThan(40);
    for (const body of bodies) for (const secret of secrets) expect(body).not.toContain(secret);
    const rows = JSON.stringify(await svc.service.ctx.store.db.selectFrom('audit_log').selectAll().execute());
    for (const secret of secrets) expect(rows).not.toContain(secret);
  });
});
