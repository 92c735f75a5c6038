import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { UserAgent } from '../support/user-agent.js';

const clientId = '11111111-2222-3333-4444-555555555555';
const clientSecret = 'entra-test-client-secret-value';

describe.each(databaseKinds)('Entra adapter against the Entra-shaped server on %s', (kind) => {
  let database: TestDatabase;
  let entra: RunningEntraServer;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const port = await freePort();
    entra = await startEntraServer({
      clients: [{ clientId, clientSecret, redirectUris: [`http://127.0.0.1:${port}/oauth/callback`] }],
    });
    svc = await startTestService({
      database,
      port,
      serviceOptions: { background: false },
      providers: [
        { id: 'entra', type: 'entra', tenant: 'organizations', authority: entra.url, clientId, clientSecret },
        {
          id: 'entra-single',
          type: 'entra',
          tenant: entra.tenantId,
          authority: entra.url,
          clientId,
          clientSecret,
        },
      ],
      integrations: [
        {
          id: 'sharepoint',
          name: 'SharePoint',
          provider: 'entra',
          scopes: ['https://graph.microsoft.com/Sites.Read.All'],
          api: { baseUrl: entra.graphUrl },
        },
        {
          id: 'bc',
          name: 'Business Central',
          provider: 'entra-single',
          scopes: ['https://api.businesscentral.dynamics.com/user_impersonation'],
        },
        {
          id: 'mixed',
          name: 'Mixed',
          provider: 'entra',
          scopes: [
            'https://graph.microsoft.com/Sites.Read.All',
            'https://api.businesscentral.dynamics.com/user_impersonation',
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await entra?.close();
    await database?.drop();
  });

  async function browserFor(user: string): Promise<UserAgent> {
    const ua = new UserAgent();
    await ua.follow(`${svc.url}/session?token=${await svc.token(user)}&return_to=/`, { maxHops: 1 });
    return ua;
  }

  async function connect(user: string, login: string, integration: string) {
    const ua = await browserFor(user);
    const authorizationUrl = await ua.startConnect(svc.url, integration);
    const callback = await ua.signInAtEntra(authorizationUrl, login);
    const done = await ua.get(callback.href);
    return { authorizationUrl, outcome: new URL(done.headers.get('location')!, svc.url) };
  }

  it('connects a multi-tenant (organizations) app: oid@tid account, offline_access added, no resource parameter', async () => {
    const { authorizationUrl, outcome } = await connect('u1', 'megan.bowen@contoso.example', 'sharepoint');
    const scopes = authorizationUrl.searchParams.get('scope')!.split(' ');
    expect(scopes).toEqual(
      expect.arrayContaining([
        'https://graph.microsoft.com/Sites.Read.All',
        'openid',
        'profile',
        'offline_access',
      ]),
    );
    expect(authorizationUrl.searchParams.has('resource')).toBe(false);
    expect(authorizationUrl.pathname).toBe('/organizations/oauth2/v2.0/authorize');
    expect(outcome.searchParams.get('outcome')).toBe('connected');
    const c = await (
      await svc.api('u1', `/api/v1/connections/${outcome.searchParams.get('connection')}`)
    ).json();
    expect(c.account.id).toMatch(new RegExp(`^[0-9a-f-]{36}@${entra.tenantId}$`));
    expect(c.account.id).not.toContain('megan');
    expect(c.account.name).toBeTruthy();
    // The proxy reaches the Graph stand-in with the token.
    const me = await svc.api('u1', `/api/v1/connections/${c.id}/proxy/v1.0/me`);
    expect(me.status).toBe(200);
  });

  it('connects a single-tenant app for Business Central', async () => {
    const { outcome } = await connect('u2', 'adele@contoso.example', 'bc');
    expect(outcome.searchParams.get('outcome')).toBe('connected');
  });

  it('refuses scopes that span two resources before sending anyone to Entra', async () => {
    const r = await svc.api('u3', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'mixed' }),
    });
    expect(r.status).toBe(502);
    expect((await r.json()).code).toBe('provider_misconfigured');
  });

  for (const [what, claims] of [
    ['a wrong audience', { aud: 'someone-else' }],
    ['a wrong nonce', { nonce: 'not-the-one-we-sent' }],
    ['an issuer that does not match its tid', { iss: 'http://127.0.0.1:1/evil/v2.0' }],
    ['an expired ID token', { exp: Math.floor(Date.now() / 1000) - 3600 }],
  ] as const) {
    it(`fails the flow on ${what} in the ID token and creates nothing`, async () => {
      entra.tamperNextIdToken(claims);
      const user = `u-bad-${what.replaceAll(' ', '-')}`;
      const { outcome } = await connect(user, 'eve@contoso.example', 'sharepoint');
      expect(outcome.searchParams.get('outcome')).toBe('failed');
      expect(await (await svc.api(user, '/api/v1/connections')).json()).toEqual([]);
    });
  }

  it('a single-tenant app refuses a token from another tenant', async () => {
    entra.tamperNextIdToken({ tid: '99999999-9999-4999-8999-999999999999' });
    const { outcome } = await connect('u-other-tenant', 'x@fabrikam.example', 'bc');
    expect(outcome.searchParams.get('outcome')).toBe('failed');
  });

  it('an AADSTS error at the token endpoint fails the flow cleanly', async () => {
    entra.failNext({
      status: 400,
      error: 'invalid_client',
      description: 'AADSTS7000215: Invalid client secret provided.',
    });
    const { outcome } = await connect('u-badsecret', 'y@contoso.example', 'sharepoint');
    expect(outcome.searchParams.get('outcome')).toBe('failed');
    expect(await (await svc.api('u-badsecret', '/api/v1/connections')).json()).toEqual([]);
  });

  it('refresh rotates at Entra; AADSTS70008 then marks the connection needs_reauth', async () => {
    const [c] = await (await svc.api('u1', '/api/v1/connections')).json();
    const before = entra.counters.tokenRequests.refresh_token ?? 0;
    await svc.service.ctx.tokens.getAccessToken(c.id, { force: true });
    expect(entra.counters.tokenRequests.refresh_token).toBe(before + 1);
    entra.failNext({
      status: 429,
      error: 'temporarily_unavailable',
      description:
        'AADSTS50196: The server terminated an operation because it encountered a client request loop.',
      headers: { 'retry-after': '1' },
    });
    await svc.service.ctx.tokens.getAccessToken(c.id, { force: true });
    expect((await (await svc.api('u1', `/api/v1/connections/${c.id}`)).json()).status).toBe('active');
    // Throttled: nothing asks Entra again before the pause it named has passed.
    const throttled = entra.counters.tokenRequests.refresh_token;
    await svc.service.ctx.tokens.getAccessToken(c.id, { force: true });
    expect(entra.counters.tokenRequests.refresh_token).toBe(throttled);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    entra.revokeAll();
    await expect(svc.service.ctx.tokens.getAccessToken(c.id, { force: true })).rejects.toMatchObject({
      code: 'connection_needs_reauth',
      reason: 'invalid_grant:AADSTS70008',
    });
    const after = await (await svc.api('u1', `/api/v1/connections/${c.id}`)).json();
    expect(after.status).toBe('needs_reauth');
  });
});
