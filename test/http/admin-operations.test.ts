import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

const clientSecret = 'admin-ops-client-secret-0123456789abcdef';
const webhookSecret = 'admin-added-webhook-secret-0123456789';

/**
 * The administrators' operations (issue 10, item 5) against a real service, oidc-provider and
 * webhook receiver: every user's connections (filters, force a refresh, disconnect), the audit
 * log (filters, JSON-lines export), webhooks (write-only secrets, deliveries, redeliver), and the
 * console pages; only admins, and never a token.
 */
describe.each(databaseKinds)('admin operations on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let svc: TestService;
  let receiver: RecordingServer;
  let connectionId: string;
  /** Every access and refresh token the provider issued, to prove none is ever shown. */
  const issued: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    receiver = await startRecordingServer();
    const port = await freePort();
    provider = await startOidcProvider({
      clients: [
        {
          client_id: 'nunq',
          client_secret: clientSecret,
          redirect_uris: [`http://127.0.0.1:${port}/oauth/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
        },
      ],
    });
    provider.provider.use(async (ctx, next) => {
      await next();
      const body = (ctx as unknown as { body?: unknown }).body;
      if (ctx.path === '/token' && body !== null && typeof body === 'object') {
        const answer = body as Record<string, unknown>;
        for (const f of ['access_token', 'refresh_token']) {
          if (typeof answer[f] === 'string') issued.push(answer[f]);
        }
      }
    });
    svc = await startTestService({
      database,
      port,
      admins: ['root'],
      serviceOptions: { background: false },
      webhooks: [{ url: `${receiver.url}/from-config`, secret: 'config-webhook-secret-0123456789' }],
      providers: [{ id: 'p', type: 'oidc', issuer: provider.issuer, clientId: 'nunq', clientSecret }],
      integrations: [
        { id: 'docs', name: 'Docs', provider: 'p', scopes: ['openid', 'profile', 'offline_access'] },
      ],
    });
    const ua = await signedInAgent(svc, 'u1');
    const callback = await ua.signInAtOidcProvider(await ua.startConnect(svc.url, 'docs'), 'alice');
    const back = await ua.get(callback.href);
    connectionId = new URL(back.headers.get('location')!, svc.url).searchParams.get('connection')!;
    expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
  });

  afterAll(async () => {
    await svc?.close();
    await provider?.close();
    await receiver?.close();
    await database?.drop();
  });

  const admin = (path: string, init?: RequestInit) => svc.api('root', path, init);
  const neverATokenIn = (text: string) => {
    expect(issued.length).toBeGreaterThan(0);
    for (const token of issued) expect(text).not.toContain(token);
  };
  const adminPaths = [
    ['GET', '/api/v1/admin/connections'],
    ['GET', '/api/v1/admin/connections/overview'],
    ['POST', '/api/v1/admin/connections/00000000-0000-4000-8000-000000000000/refresh'],
    ['DELETE', '/api/v1/admin/connections/00000000-0000-4000-8000-000000000000'],
    ['GET', '/api/v1/admin/audit'],
    ['GET', '/api/v1/admin/notifications'],
    ['GET', '/api/v1/admin/webhooks'],
    ['GET', '/api/v1/admin/webhooks/deliveries'],
  ] as const;

  it.each(adminPaths)('%s %s: 404 to a signed-in user, 401 without credentials', async (method, path) => {
    const asUser = await svc.api('u1', path, { method });
    expect(asUser.status).toBe(404);
    expect(asUser.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const anonymous = await fetch(`${svc.url}${path}`, { method });
    expect(anonymous.status).toBe(401);
  });

  it('lists every user’s connections with their health, filtered, and never a token', async () => {
    const all = await admin('/api/v1/admin/connections');
    expect(all.status).toBe(200);
    const text = await all.text();
    neverATokenIn(text);
    const list = JSON.parse(text) as Array<Record<string, unknown>>;
    expect(list).toEqual([
      expect.objectContaining({
        id: connectionId,
        user: 'u1',
        integration: 'docs',
        status: 'active',
        statusReason: null,
        refreshFailures: 0,
      }),
    ]);
    expect(Object.keys(list[0]!).sort()).toEqual(
      [
        'id',
        'user',
        'integration',
        'status',
        'statusReason',
        'account',
        'createdAt',
        'updatedAt',
        'lastRefreshedAt',
        'nextRefreshAt',
        'refreshFailures',
        'accessTokenExpiresAt',
      ].sort(),
    );
    const count = async (query: string) =>
      ((await (await admin(`/api/v1/admin/connections?${query}`)).json()) as unknown[]).length;
    expect(await count('user=u1')).toBe(1);
    expect(await count('user=u2')).toBe(0);
    expect(await count('status=active&integration=docs')).toBe(1);
    expect(await count('status=needs_reauth')).toBe(0);
    const bad = await admin('/api/v1/admin/connections?status=broken');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('query.status');
    const overview = await (await admin('/api/v1/admin/connections/overview')).json();
    expect(overview).toEqual([{ integration: 'docs', active: 1, needsReauth: 0, total: 1 }]);
  });

  it('forces a refresh: the provider is asked once, the connection says when, the audit says who', async () => {
    const before = provider.counters.tokenRequests.refresh_token ?? 0;
    const r = await admin(`/api/v1/admin/connections/${connectionId}/refresh`, { method: 'POST' });
    expect(r.status).toBe(200);
    const text = await r.text();
    neverATokenIn(text);
    const body = JSON.parse(text) as { outcome: string; connection: { lastRefreshedAt: string | null } };
    expect(body.outcome).toBe('refreshed');
    expect(body.connection.lastRefreshedAt).not.toBeNull();
    expect(provider.counters.tokenRequests.refresh_token).toBe(before + 1);
    const audit = (await (
      await admin('/api/v1/admin/audit?action=admin.connection_refreshed')
    ).json()) as Array<Record<string, unknown>>;
    expect(audit[0]).toMatchObject({
      actor: 'root',
      user: 'u1',
      integration: 'docs',
      targetId: connectionId,
      data: { outcome: 'refreshed' },
    });
    // The user still uses the connection: the refresh changed nothing for them but the token.
    expect((await (await svc.api('u1', `/api/v1/connections/${connectionId}`)).json()).status).toBe('active');
    expect((await admin('/api/v1/admin/connections/not-a-uuid/refresh', { method: 'POST' })).status).toBe(
      404,
    );
  });

  it('filters the audit log by user, integration, event and time, and exports it as JSON lines', async () => {
    const get = async (query: string) =>
      (await (await admin(`/api/v1/admin/audit?${query}`)).json()) as Array<Record<string, unknown>>;
    const mine = await get('user=u1');
    expect(mine.map((a) => a.action)).toEqual(
      expect.arrayContaining(['session.started', 'connection.created', 'admin.connection_refreshed']),
    );
    for (const a of mine) expect(a.user === 'u1' || a.actor === 'u1').toBe(true);
    expect(await get('user=nobody')).toEqual([]);
    const docs = await get('integration=docs');
    expect(docs.length).toBeGreaterThanOrEqual(2);
    for (const a of docs) expect(a.integration).toBe('docs');
    const created = await get('action=connection.created');
    expect(created).toHaveLength(1);
    expect(await get(`since=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    expect((await get(`until=${new Date(Date.now() + 60_000).toISOString()}`)).length).toBeGreaterThan(2);
    const bad = await admin('/api/v1/admin/audit?since=yesterday');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('query.since');

    const exported = await admin('/api/v1/admin/audit?format=jsonl&user=u1');
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toMatch(/^application\/jsonl/);
    expect(exported.headers.get('content-disposition')).toMatch(/attachment; filename="nunq-audit-/);
    const text = await exported.text();
    neverATokenIn(text);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number });
    expect(lines.map((l) => l.id)).toEqual(mine.map((a) => a.id));
  });

  it('exports a log larger than one page, every entry once', async () => {
    const { audit } = svc.service.ctx;
    for (let i = 0; i < 25; i++) {
      await audit.record({ actor: 'system', action: 'keys.rotated', userId: 'bulk', data: { i } });
    }
    const rows: number[] = [];
    for await (const row of audit.export({ user: 'bulk' }, 10)) rows.push(JSON.parse(row.data).i);
    expect(rows).toEqual(Array.from({ length: 25 }, (_, i) => 24 - i));
  });

  it('manages webhook endpoints with a write-only secret, shows deliveries and redelivers', async () => {
    const created = await admin('/api/v1/admin/webhooks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${receiver.url}/admin-added`, secret: webhookSecret }),
    });
    expect(created.status).toBe(201);
    const createdText = await created.text();
    expect(createdText).not.toContain(webhookSecret);
    const endpoint = JSON.parse(createdText) as { id: string; hasSecret: boolean; source: string };
    expect(endpoint).toMatchObject({ hasSecret: true, source: 'admin' });
    const listed = await (await admin('/api/v1/admin/webhooks')).text();
    expect(listed).not.toContain(webhookSecret);
    expect(listed).not.toContain('config-webhook-secret');
    expect(JSON.parse(listed)).toHaveLength(2);

    const duplicate = await admin('/api/v1/admin/webhooks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${receiver.url}/admin-added`, secret: webhookSecret }),
    });
    expect(duplicate.status).toBe(409);
    const badUrl = await admin('/api/v1/admin/webhooks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'ftp://x', secret: 'short' }),
    });
    expect(badUrl.status).toBe(400);
    const problems = JSON.stringify(await badUrl.json());
    expect(problems).toContain('body.url');
    expect(problems).toContain('body.secret');

    // An address the outbound policy refuses is said at once, not at the first delivery.
    for (const url of ['http://169.254.169.254/hook', 'http://[::ffff:10.0.0.1]/hook', 'http://10.1.2.3/']) {
      const refused = await admin('/api/v1/admin/webhooks', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url, secret: webhookSecret }),
      });
      expect(refused.status, url).toBe(400);
      expect(JSON.stringify(await refused.json())).toContain('refused by the outbound policy');
    }

    // An event after the endpoint exists reaches it, signed with its secret.
    const ua = await signedInAgent(svc, 'u2');
    const callback = await ua.signInAtOidcProvider(await ua.startConnect(svc.url, 'docs'), 'bob');
    await ua.get(callback.href);
    await svc.service.ctx.webhooks.deliverDue();
    await receiver.waitFor((r) => r.some((x) => x.url === '/admin-added'));
    const deliveries = (await (
      await admin(`/api/v1/admin/webhooks/deliveries?endpoint=${endpoint.id}`)
    ).json()) as Array<{ id: string; status: string; eventId: string; lastStatus: number }>;
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ status: 'delivered', lastStatus: 200 });

    const again = await admin(`/api/v1/admin/webhooks/deliveries/${deliveries[0]!.id}/redeliver`, {
      method: 'POST',
    });
    expect(again.status).toBe(201);
    await svc.service.ctx.webhooks.deliverDue();
    await receiver.waitFor((r) => r.filter((x) => x.url === '/admin-added').length === 2);
    const bodies = receiver.received
      .filter((x) => x.url === '/admin-added')
      .map((x) => (JSON.parse(x.body) as { id: string }).id);
    expect(bodies[1]).toBe(bodies[0]);
    expect(bodies[0]).toBe(deliveries[0]!.eventId);

    // The config file's endpoint is the file's: 409; the console's is deleted.
    const configId = (JSON.parse(listed) as Array<{ id: string; source: string }>).find(
      (e) => e.source === 'config',
    )!.id;
    expect((await admin(`/api/v1/admin/webhooks/${configId}`, { method: 'DELETE' })).status).toBe(409);
    const patched = await admin(`/api/v1/admin/webhooks/${configId}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: false }),
    });
    expect(patched.status).toBe(409);
    // The console shows it read-only, and a save to it is refused on that page.
    const browser = await signedInAgent(svc, 'root');
    const token = JSON.parse((await browser.get(`${svc.url}/api/v1/me`)).body).csrfToken as string;
    const view = await browser.get(`${svc.url}/admin/webhooks/${configId}`);
    expect(view.body).toContain('data-testid="from-config"');
    expect(view.body).not.toContain('data-testid="edit-form"');
    const save = await browser.post(`${svc.url}/admin/webhooks/${configId}`, {
      _csrf: token,
      url: `${receiver.url}/elsewhere`,
    });
    expect(save.status).toBe(409);
    expect(save.body).toContain('comes from the config file');
    expect(JSON.parse(await (await admin('/api/v1/admin/webhooks')).text())).toContainEqual(
      expect.objectContaining({ id: configId, enabled: true, url: `${receiver.url}/from-config` }),
    );
    expect((await admin(`/api/v1/admin/webhooks/${endpoint.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await admin(`/api/v1/admin/webhooks/${endpoint.id}`, { method: 'DELETE' })).status).toBe(404);
  });

  describe('the console pages', () => {
    let rootBrowser: UserAgent;
    let csrf: string;
    beforeAll(async () => {
      rootBrowser = await signedInAgent(svc, 'root');
      csrf = JSON.parse((await rootBrowser.get(`${svc.url}/api/v1/me`)).body).csrfToken;
    });

    it.each(['/admin/connections', '/admin/audit', '/admin/webhooks'])(
      '%s: served to admins, 404 to a signed-in user',
      async (path) => {
        const page = await rootBrowser.get(`${svc.url}${path}`);
        expect(page.status).toBe(200);
        expect(page.body).toContain('aria-current="page"');
        neverATokenIn(page.body);
        expect(page.body).not.toContain(webhookSecret);
        const user = await signedInAgent(svc, 'u1');
        expect((await user.get(`${svc.url}${path}`)).status).toBe(404);
      },
    );

    it('filters connections by the form (empty fields mean any)', async () => {
      const page = await rootBrowser.get(`${svc.url}/admin/connections?status=&integration=docs&user=u1`);
      expect(page.status).toBe(200);
      expect(page.body).toContain(`data-testid="admin-connection-${connectionId}"`);
      const none = await rootBrowser.get(`${svc.url}/admin/connections?user=nobody`);
      expect(none.body).toContain('No connection matches.');
    });

    it('refreshes from the console with the CSRF token only', async () => {
      const refused = await rootBrowser.post(`${svc.url}/admin/connections/${connectionId}/refresh`, {});
      expect(refused.status).toBe(403);
      const done = await rootBrowser.post(`${svc.url}/admin/connections/${connectionId}/refresh`, {
        _csrf: csrf,
      });
      expect(done.status).toBe(303);
      expect(done.headers.get('location')).toBe('/admin/connections?done=refresh_refreshed');
      const shown = await rootBrowser.get(`${svc.url}/admin/connections?done=refresh_refreshed`);
      expect(shown.body).toContain('Refreshed: the connection has a new access token.');
    });

    it('shows the failure when the provider refuses the refresh, and the connection needs its user', async () => {
      await provider.revokeGrants('alice');
      const done = await rootBrowser.post(`${svc.url}/admin/connections/${connectionId}/refresh`, {
        _csrf: csrf,
      });
      expect(done.headers.get('location')).toBe('/admin/connections?done=refresh_needs_reauth');
      const listed = (await (await admin('/api/v1/admin/connections?status=needs_reauth')).json()) as Array<{
        id: string;
      }>;
      expect(listed.map((c) => c.id)).toEqual([connectionId]);
    });

    it('disconnects a user’s connection after a confirmation page, and the user is told', async () => {
      const confirm = await rootBrowser.get(`${svc.url}/admin/connections/${connectionId}/disconnect`);
      expect(confirm.status).toBe(200);
      expect(confirm.body).toContain("Disconnect u1's docs connection?");
      expect(
        (await rootBrowser.post(`${svc.url}/admin/connections/${connectionId}/disconnect`, {})).status,
      ).toBe(403);
      const done = await rootBrowser.post(`${svc.url}/admin/connections/${connectionId}/disconnect`, {
        _csrf: csrf,
      });
      expect(done.status).toBe(303);
      expect((await svc.api('u1', `/api/v1/connections/${connectionId}`)).status).toBe(404);
      const audit = (await (
        await admin(`/api/v1/admin/audit?action=connection.deleted&user=u1`)
      ).json()) as Array<Record<string, unknown>>;
      expect(audit[0]).toMatchObject({
        actor: 'root',
        user: 'u1',
        integration: 'docs',
        targetId: connectionId,
      });
      expect((await admin(`/api/v1/admin/connections/${connectionId}`)).status).toBe(404);
    });
  });
});
