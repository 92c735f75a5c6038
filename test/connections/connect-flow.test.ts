import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDemoApi, startDemoApi } from '../../src/demo/demo-api.js';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { UserAgent } from '../support/user-agent.js';

const clientSecret = 'flow-test-client-secret-0123456789';

describe.each(databaseKinds)('connect flow against oidc-provider on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let api: RunningDemoApi;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const apiPort = await freePort();
    const servicePort = await freePort();
    provider = await startOidcProvider({
      clients: [
        {
          client_id: 'nunq',
          client_secret: clientSecret,
          redirect_uris: [`http://127.0.0.1:${servicePort}/oauth/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      resource: { url: `http://127.0.0.1:${apiPort}/`, scopes: ['items:read'] },
      accounts: { alice: { name: 'Alice Example', email: 'alice@example.com' } },
    });
    api = await startDemoApi({
      issuer: provider.issuer,
      audience: `http://127.0.0.1:${apiPort}/`,
      port: apiPort,
    });
    svc = await startTestService({
      database,
      port: servicePort,
      providers: [{ id: 'demo', type: 'oidc', issuer: provider.issuer, clientId: 'nunq', clientSecret }],
      integrations: [
        {
          id: 'items',
          name: 'Items',
          provider: 'demo',
          scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
          api: { baseUrl: api.url },
        },
        { id: 'off', name: 'Switched off', provider: 'demo', scopes: ['openid'], enabled: false },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await api?.close();
    await provider?.close();
    await database?.drop();
  });

  /** Signs `user` in to the service (session cookie) in a fresh user agent. */
  async function browserFor(user: string): Promise<UserAgent> {
    const ua = new UserAgent();
    const r = await ua.follow(`${svc.url}/session?token=${await svc.token(user)}&return_to=/`, {
      maxHops: 1,
    });
    expect(r.response.status).toBe(200);
    return ua;
  }

  async function connect(ua: UserAgent, login: string, integration = 'items') {
    const authorizationUrl = await ua.startConnect(svc.url, integration);
    const callback = await ua.signInAtOidcProvider(authorizationUrl, login);
    return { authorizationUrl, callback };
  }

  it('connects: PKCE S256, state, nonce; callback creates an active connection with the account', async () => {
    const ua = await browserFor('u-alice');
    const { authorizationUrl, callback } = await connect(ua, 'alice');
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('state')!.length).toBeGreaterThanOrEqual(43);
    expect(authorizationUrl.searchParams.get('nonce')).toBeTruthy();
    expect(callback.searchParams.get('iss')).toBe(provider.issuer);

    const done = await ua.get(callback.href);
    expect(done.status).toBe(302);
    const back = new URL(done.headers.get('location')!, svc.url);
    expect(back.pathname).toBe('/');
    expect(back.searchParams.get('outcome')).toBe('connected');
    const connectionId = back.searchParams.get('connection')!;

    const list = await (await svc.api('u-alice', '/api/v1/integrations')).json();
    expect(list).toContainEqual({
      id: 'items',
      name: 'Items',
      kind: 'oauth',
      status: 'active',
      connectionId,
    });
    const c = await (await svc.api('u-alice', `/api/v1/connections/${connectionId}`)).json();
    expect(c).toMatchObject({
      id: connectionId,
      integration: 'items',
      status: 'active',
      account: { id: 'alice', name: 'Alice Example', email: 'alice@example.com' },
    });
    expect(c.scopes).toContain('items:read');
    expect(Date.parse(c.accessTokenExpiresAt)).toBeGreaterThan(Date.now());

    // The proxy uses it without showing it.
    const proxied = await svc.api('u-alice', `/api/v1/connections/${connectionId}/proxy/items`);
    expect(proxied.status).toBe(200);
    expect((await proxied.json()).items).toHaveLength(3);
    const me = await (await svc.api('u-alice', `/api/v1/connections/${connectionId}/proxy/me`)).json();
    expect(me.sub).toBe('alice');

    // The page shows it, too.
    const page = (await ua.get(`${svc.url}/?outcome=connected`)).body;
    expect(page).toContain('Connected as Alice Example');

    // Replaying the same callback changes nothing.
    const replay = await ua.get(callback.href);
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('already used');
    expect(provider.counters.tokenRequests.authorization_code).toBe(1);
  });

  it("refuses another user's callback and leaves it usable for its owner", async () => {
    const owner = await browserFor('u-owner');
    const { callback } = await connect(owner, 'owner');
    const mallory = await browserFor('u-mallory');
    const stolen = await mallory.get(callback.href);
    expect(stolen.status).toBe(400);
    expect((await (await svc.api('u-mallory', '/api/v1/connections')).json()).length).toBe(0);
    const ok = await owner.get(callback.href);
    expect(new URL(ok.headers.get('location')!, svc.url).searchParams.get('outcome')).toBe('connected');
  });

  it('refuses a forged state and a callback without state', async () => {
    const ua = await browserFor('u-forger');
    const forged = await ua.get(`${svc.url}/oauth/callback?code=abc&state=${'x'.repeat(43)}`);
    expect(forged.status).toBe(400);
    const missing = await ua.get(`${svc.url}/oauth/callback?code=abc`);
    expect(missing.status).toBe(400);
    expect((await (await svc.api('u-forger', '/api/v1/connections')).json()).length).toBe(0);
  });

  it('a GET /connect only shows a confirmation page; the flow starts from its POST with the CSRF token', async () => {
    const ua = await browserFor('u-confirm');
    const pending = async () =>
      (
        await svc.service.ctx.store.db
          .selectFrom('pending_authorizations')
          .select('state_hash')
          .where('user_id', '=', 'u-confirm')
          .execute()
      ).length;
    const page = await ua.get(`${svc.url}/connect/items?return_to=/after`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.body).toContain('<h1>Connect Items?</h1>');
    expect(page.body).toContain('You are signed in as <strong><code>u-confirm</code></strong>');
    expect(page.body).toContain('<form method="post" action="/connect/items"');
    expect(page.body).toContain('name="return_to" value="/after"');
    expect(await pending()).toBe(0);
    // What a cross-site form could send: no CSRF token, or a foreign Origin.
    const me = JSON.parse((await ua.get(`${svc.url}/api/v1/me`)).body) as { csrfToken: string };
    const forged = await ua.post(`${svc.url}/connect/items`, { return_to: '/after' });
    expect(forged.status).toBe(403);
    const crossSite = await fetch(`${svc.url}/connect/items`, {
      method: 'POST',
      headers: {
        cookie: Object.entries(ua.cookies(svc.url))
          .map(([k, v]) => `${k}=${v}`)
          .join('; '),
        origin: 'https://evil.example',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ _csrf: me.csrfToken }),
      redirect: 'manual',
    });
    expect(crossSite.status).toBe(403);
    expect(await pending()).toBe(0);
    const authorizationUrl = await ua.startConnect(svc.url, 'items', '/after');
    expect(authorizationUrl.origin).toBe(provider.issuer);
    expect(await pending()).toBe(1);
    // Unknown and disabled integrations: no page to confirm.
    expect((await ua.get(`${svc.url}/connect/nope`)).status).toBe(404);
    // A disabled integration is not offered at all (issue 10): the page says not found.
    expect((await ua.get(`${svc.url}/connect/off`)).status).toBe(404);
  });

  it('refuses a mismatched iss and creates nothing', async () => {
    const ua = await browserFor('u-iss');
    const { callback } = await connect(ua, 'iss');
    callback.searchParams.set('iss', 'http://127.0.0.1:1/evil');
    const r = await ua.get(callback.href);
    expect(new URL(r.headers.get('location')!, svc.url).searchParams.get('outcome')).toBe('failed');
    expect((await (await svc.api('u-iss', '/api/v1/connections')).json()).length).toBe(0);
  });

  it('turns access_denied into a friendly outcome and creates nothing', async () => {
    const ua = await browserFor('u-denied');
    const authorizationUrl = await ua.startConnect(svc.url, 'items', '/somewhere');
    const denied = new URL(`${svc.url}/oauth/callback`);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('state', authorizationUrl.searchParams.get('state')!);
    denied.searchParams.set('iss', provider.issuer);
    const r = await ua.get(denied.href);
    const back = new URL(r.headers.get('location')!, svc.url);
    expect(back.pathname).toBe('/somewhere');
    expect(back.searchParams.get('outcome')).toBe('denied');
    expect((await (await svc.api('u-denied', '/api/v1/connections')).json()).length).toBe(0);
  });

  it('refuses off-origin return_to, unknown and disabled integrations with problem+json', async () => {
    for (const bad of [
      'https://evil.example/',
      '//evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
    ]) {
      const r = await svc.api('u-x', '/api/v1/connections', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ integration: 'items', returnTo: bad }),
      });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect((await r.json()).code).toBe('return_to_invalid');
    }
    const unknown = await svc.api('u-x', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'nope' }),
    });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).code).toBe('integration_not_found');
    const off = await svc.api('u-x', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'off' }),
    });
    expect(off.status).toBe(409);
    expect((await off.json()).code).toBe('integration_disabled');
  });

  it('API-driven connect returns an authorization URL bound to the caller', async () => {
    const r = await svc.api('u-api', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'items', returnTo: '/done' }),
    });
    expect(r.status).toBe(201);
    const { authorizationUrl } = await r.json();
    const ua = await browserFor('u-api');
    const callback = await ua.signInAtOidcProvider(authorizationUrl, 'api-user');
    // Started with a bearer, not in this browser: one confirmation on our page, then connected.
    const done = await ua.answerParked(await ua.get(callback.href));
    const back = new URL(done.headers.get('location')!, svc.url);
    expect(back.pathname).toBe('/done');
    expect(back.searchParams.get('outcome')).toBe('connected');
  });

  it('isolates users: another user sees 404 for a connection id', async () => {
    const [mine] = await (await svc.api('u-alice', '/api/v1/connections')).json();
    const r = await svc.api('u-mallory', `/api/v1/connections/${mine.id}`);
    expect(r.status).toBe(404);
    const del = await svc.api('u-mallory', `/api/v1/connections/${mine.id}`, { method: 'DELETE' });
    expect(del.status).toBe(404);
  });

  /** The connection's stored (sealed) tokens and version, and the tokens opened. */
  async function storedTokens(connectionId: string) {
    const row = await svc.service.ctx.store.db
      .selectFrom('connections')
      .select(['access_token_sealed', 'refresh_token_sealed', 'version'])
      .where('id', '=', connectionId)
      .executeTakeFirstOrThrow();
    const open = (field: 'access_token_sealed' | 'refresh_token_sealed') =>
      svc.service.ctx.sealer.open(row[field]!, { table: 'connections', rowId: connectionId, field });
    return { ...row, accessToken: open('access_token_sealed'), refreshToken: open('refresh_token_sealed') };
  }

  /** A refresh_token grant sent straight to the provider as our client: its HTTP status and error. */
  async function refreshAtProvider(refreshToken: string): Promise<{ status: number; error?: string }> {
    const r = await fetch(`${provider.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`nunq:${clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    const body = (await r.json()) as { error?: string };
    return { status: r.status, ...(body.error === undefined ? {} : { error: body.error }) };
  }

  it('reconnect replaces the tokens of the same connection id', async () => {
    const [before] = await (await svc.api('u-alice', '/api/v1/connections')).json();
    const old = await storedTokens(before.id);
    const r = await svc.api('u-alice', `/api/v1/connections/${before.id}/reconnect`, { method: 'POST' });
    expect(r.status).toBe(201);
    const ua = await browserFor('u-alice');
    const callback = await ua.signInAtOidcProvider((await r.json()).authorizationUrl, 'alice');
    const done = await ua.answerParked(await ua.get(callback.href));
    const back = new URL(done.headers.get('location')!, svc.url);
    expect(back.searchParams.get('outcome')).toBe('reconnected');
    expect(back.searchParams.get('connection')).toBe(before.id);
    // New tokens were written to the same row: new ciphertexts, new plaintexts, a new version.
    const now = await storedTokens(before.id);
    expect(now.version).toBeGreaterThan(old.version);
    expect(now.access_token_sealed).not.toBe(old.access_token_sealed);
    expect(now.refresh_token_sealed).not.toBe(old.refresh_token_sealed);
    expect(now.accessToken).not.toBe(old.accessToken);
    expect(now.refreshToken).not.toBe(old.refreshToken);
    // The new refresh token is the one in use: a forced refresh presents it and the provider takes
    // it (and rotates it). Not presented again here: reuse detection would revoke the whole grant.
    const refreshed = await svc.service.ctx.tokens.getAccessToken(before.id, { force: true });
    expect(refreshed.value).not.toBe(now.accessToken);
    expect((await storedTokens(before.id)).refreshToken).not.toBe(now.refreshToken);
    const after = await (await svc.api('u-alice', `/api/v1/connections/${before.id}`)).json();
    expect(Date.parse(after.updatedAt)).toBeGreaterThan(Date.parse(before.updatedAt));
  });

  it('disconnect revokes at the provider and deletes the connection', async () => {
    const [c] = await (await svc.api('u-alice', '/api/v1/connections')).json();
    const { refreshToken } = await storedTokens(c.id);
    const r = await svc.api('u-alice', `/api/v1/connections/${c.id}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    expect((await svc.api('u-alice', `/api/v1/connections/${c.id}`)).status).toBe(404);
    // The provider no longer honours the grant: its refresh token is refused there.
    expect(await refreshAtProvider(refreshToken)).toMatchObject({ status: 400, error: 'invalid_grant' });
    const audit = await svc.service.ctx.audit.list({ targetId: c.id });
    expect(audit.map((a) => a.action)).toContain('connection.deleted');
    expect(JSON.parse(audit.find((a) => a.action === 'connection.deleted')!.data).revocation).toBe('revoked');
  });
});
