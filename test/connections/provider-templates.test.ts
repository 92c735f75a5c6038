/**
 * Every provider template, end to end, against a local server shaped like that provider
 * (test/peers/provider-shaped-server.ts): the provider is configured as an admin would, with
 * `template:` plus a client id and secret (and, here only, its endpoints pointed at the local
 * server); a person connects through the Connect page and the provider's redirect; a proxy call
 * lands on the right API base URL with that connection's token; when the API refuses the token,
 * the proxy refreshes where the provider issues refresh tokens (with rotation where it rotates)
 * and passes the 401 on where it does not, and the connection stays active.
 * Entra's template runs against the Entra-shaped server in test/connections/entra-template.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTemplate } from '../../src/oauth/templates/index.js';
import {
  type ProviderShape,
  type ProviderShapedServer,
  startProviderShapedServer,
} from '../peers/provider-shaped-server.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientSecret = 'template-test-client-secret-0123456789';

type Shape = Omit<ProviderShape, 'clientId' | 'clientSecret' | 'authorizePath' | 'tokenPath'> &
  Partial<Pick<ProviderShape, 'authorizePath' | 'tokenPath'>>;

interface Case {
  /** Provider and integration id in this test. */
  id: string;
  template: string;
  shape: Shape;
  /** Provider fields beyond the template (besides the endpoints, rebased to the local server). */
  provider?: (server: ProviderShapedServer) => Record<string, unknown>;
  scopes?: string[];
  /** The account the connection shows, for login `alice`. */
  account: Record<string, string>;
  expectRefresh: 'rotating' | 'static' | 'none';
}

const cloudIds: Record<string, string> = {
  alice: '1324a887-45db-1bf4-1e99-ef0ff456d421',
  bob: '9f2b6c1e-0a3d-4e5f-8a7b-6c5d4e3f2a1b',
};

const cases: Case[] = [
  {
    id: 'google',
    account: { id: 'sub-alice', name: 'alice', email: 'alice@example.com' },
    template: 'google',
    shape: {
      authorizePath: '/o/oauth2/v2/auth',
      tokenPath: '/token',
      oidc: true,
      clientAuth: 'post',
      requiredParams: { access_type: 'offline', prompt: 'consent' },
      expiresIn: 3599,
      refreshTokens: 'static',
      shape: 'standard',
    },
    expectRefresh: 'static',
  },
  {
    id: 'github',
    account: { id: '4242', name: 'alice name', email: 'alice@example.com' },
    template: 'github',
    shape: { clientAuth: 'post', refreshTokens: 'none', shape: 'github', userinfoPath: '/user' },
    expectRefresh: 'none',
  },
  {
    id: 'github-app',
    account: { id: '4242', name: 'alice name', email: 'alice@example.com' },
    template: 'github',
    shape: {
      clientAuth: 'post',
      expiresIn: 28800,
      refreshTokens: 'rotating',
      shape: 'github',
      userinfoPath: '/user',
    },
    expectRefresh: 'rotating',
  },
  {
    id: 'atlassian',
    account: { id: '4242', name: 'alice name', email: 'alice@example.com' },
    template: 'atlassian',
    shape: {
      clientAuth: 'post',
      requiredParams: { audience: 'api.atlassian.com', prompt: 'consent' },
      expiresIn: 3600,
      refreshTokens: 'rotating',
      shape: 'standard',
      userinfoPath: '/me',
      accessibleResources: {
        path: '/oauth/token/accessible-resources',
        sites: (login) =>
          cloudIds[login] === undefined ? [] : [{ id: cloudIds[login]!, name: `${login}-site` }],
      },
    },
    expectRefresh: 'rotating',
  },
  {
    id: 'slack',
    account: { id: 'U-alice' },
    template: 'slack',
    shape: {
      clientAuth: 'post',
      scopeParam: 'user_scope',
      scopeSeparator: ',',
      refreshTokens: 'none',
      shape: 'slack',
    },
    expectRefresh: 'none',
  },
  {
    id: 'slack-rotation',
    account: { id: 'U-alice' },
    template: 'slack',
    shape: {
      clientAuth: 'post',
      scopeParam: 'user_scope',
      scopeSeparator: ',',
      expiresIn: 43200,
      refreshTokens: 'rotating',
      shape: 'slack',
    },
    expectRefresh: 'rotating',
  },
  {
    id: 'hubspot',
    account: {},
    template: 'hubspot',
    shape: { clientAuth: 'post', expiresIn: 1800, refreshTokens: 'static', shape: 'hubspot' },
    expectRefresh: 'static',
  },
  {
    id: 'notion',
    account: { id: 'notion-user-alice', name: 'Alice', email: 'alice@example.com' },
    template: 'notion',
    shape: {
      clientAuth: 'basic',
      body: 'json',
      requiredParams: { owner: 'user' },
      extraFields: (login) => ({
        workspace_id: 'w1',
        owner: {
          type: 'user',
          user: { id: `notion-user-${login}`, name: 'Alice', person: { email: `${login}@example.com` } },
        },
      }),
      expiresIn: 3600,
      refreshTokens: 'rotating',
      shape: 'standard',
    },
    expectRefresh: 'rotating',
  },
  {
    id: 'linear',
    account: {},
    template: 'linear',
    shape: {
      clientAuth: 'post',
      scopeSeparator: ',',
      expiresIn: 86399,
      refreshTokens: 'rotating',
      shape: 'standard',
    },
    scopes: ['read', 'write'],
    expectRefresh: 'rotating',
  },
  {
    id: 'dropbox',
    account: { id: 'dbid:alice' },
    template: 'dropbox',
    shape: {
      clientAuth: 'basic',
      requiredParams: { token_access_type: 'offline' },
      extraFields: (login) => ({ account_id: `dbid:${login}`, uid: '12345' }),
      expiresIn: 14400,
      refreshTokens: 'static',
      shape: 'standard',
    },
    expectRefresh: 'static',
  },
  {
    id: 'box',
    account: { id: '4242', name: 'alice name', email: 'alice@example.com' },
    template: 'box',
    shape: {
      clientAuth: 'post',
      expiresIn: 3600,
      refreshTokens: 'rotating',
      shape: 'standard',
      userinfoPath: '/2.0/users/me',
    },
    expectRefresh: 'rotating',
  },
  {
    id: 'zoom',
    account: { id: '4242', name: 'alice name', email: 'alice@example.com' },
    template: 'zoom',
    shape: {
      clientAuth: 'basic',
      expiresIn: 3599,
      refreshTokens: 'rotating',
      shape: 'standard',
      userinfoPath: '/v2/users/me',
    },
    expectRefresh: 'rotating',
  },
];

/** `https://api.github.com/x` → `http://127.0.0.1:PORT/x`: the template's path, on the local server. */
const rebase = (url: string, server: ProviderShapedServer) => {
  const u = new URL(url);
  return `${server.url}${u.pathname === '/' ? '' : u.pathname}`;
};

describe('provider templates against provider-shaped local servers, on sqlite', () => {
  let database: TestDatabase;
  let svc: TestService;
  const servers = new Map<string, ProviderShapedServer>();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const providers: unknown[] = [];
    const integrations: unknown[] = [];
    for (const c of cases) {
      const template = getTemplate(c.template)!;
      const endpoints = template.provider;
      const path = (u: string | undefined) => (u === undefined ? undefined : new URL(u).pathname);
      const server = await startProviderShapedServer({
        clientId: `${c.id}-client`,
        clientSecret,
        authorizePath:
          c.shape.authorizePath ??
          path(endpoints.type === 'oauth2' ? endpoints.authorizationEndpoint : undefined)!,
        tokenPath:
          c.shape.tokenPath ?? path(endpoints.type === 'oauth2' ? endpoints.tokenEndpoint : undefined)!,
        ...c.shape,
      });
      servers.set(c.id, server);
      const rebased: Record<string, unknown> =
        endpoints.type === 'oidc'
          ? { issuer: server.url }
          : endpoints.type === 'oauth2'
            ? Object.fromEntries(
                (
                  [
                    'authorizationEndpoint',
                    'tokenEndpoint',
                    'revocationEndpoint',
                    'userinfoEndpoint',
                  ] as const
                )
                  .filter((k) => endpoints[k] !== undefined)
                  .map((k) => [k, rebase(endpoints[k]!, server)]),
              )
            : {};
      const settings = template.settings.connectionApiBase;
      if (settings?.from === 'accessible_resources') {
        rebased.connectionApiBase = { from: 'accessible_resources', url: rebase(settings.url, server) };
      }
      providers.push({
        id: c.id,
        template: c.template,
        clientId: `${c.id}-client`,
        clientSecret,
        ...rebased,
        ...(c.provider?.(server) ?? {}),
      });
      const suggested = template.integrations[0]!;
      integrations.push({
        id: c.id,
        name: suggested.name,
        provider: c.id,
        scopes: c.scopes ?? suggested.scopes,
        ...(suggested.api === undefined ? {} : { api: { baseUrl: rebase(suggested.api.baseUrl, server) } }),
      });
    }
    svc = await startTestService({
      database,
      providers,
      integrations,
      serviceOptions: { background: false },
    });
  });

  afterAll(async () => {
    await svc?.close();
    for (const server of servers.values()) await server.close();
    await database?.drop();
  });

  /** Connects `integration` for `user` as a person does; the connection id. */
  async function connect(integration: string, user: string, login = 'alice') {
    servers.get(integration)!.nextLogin = login;
    const ua = await signedInAgent(svc, user);
    const authorizationUrl = await ua.startConnect(svc.url, integration);
    const atProvider = await ua.get(authorizationUrl);
    expect(atProvider.status).toBe(302);
    const done = await ua.get(atProvider.location!);
    const back = new URL(done.location!);
    return { back, authorizationUrl, connectionId: back.searchParams.get('connection') };
  }

  const statusOf = async (user: string, id: string) =>
    (
      (await (await svc.api(user, `/api/v1/connections/${id}`)).json()) as {
        status: string;
        account: unknown;
      }
    ).status;

  it.each(cases.map((c) => [c.id, c] as const))(
    '%s: connect, proxy to the API, and refresh as the provider does',
    async (id, c) => {
      const server = servers.get(id)!;
      const user = `u-${id}`;
      const { back, authorizationUrl, connectionId } = await connect(id, user);
      expect(back.searchParams.get('outcome')).toBe('connected');
      expect(connectionId).toBeTruthy();
      // The provider's own rules held on the way: its parameters, its client authentication, its body format.
      const sent = server.authorizeRequests.at(-1)!;
      expect(sent.toString()).toBe(authorizationUrl.searchParams.toString());
      const exchange = server.tokenRequests.find((r) => r.grant === 'authorization_code')!;
      expect(exchange).toMatchObject({ auth: c.shape.clientAuth, status: 200 });
      if (c.shape.body === 'json') expect(exchange.contentType).toContain('application/json');
      const view = await (await svc.api(user, `/api/v1/connections/${connectionId}`)).json();
      expect(view.account).toEqual(c.account);

      const call = async () => svc.api(user, `/api/v1/connections/${connectionId}/proxy/probe/${id}?q=1`);
      const first = await call();
      expect(first.status).toBe(200);
      const landed = server.apiCalls.at(-1)!;
      expect(landed).toMatchObject({ host: 'provider', login: 'alice', status: 200 });
      expect(landed.url).toMatch(new RegExp(`/probe/${id}\\?q=1$`));

      const refreshesBefore = server.tokenRequests.filter((r) => r.grant === 'refresh_token').length;
      const liveBefore = server.liveRefreshTokens();
      server.expireAccessTokens();
      const second = await call();
      const refreshes = server.tokenRequests
        .filter((r) => r.grant === 'refresh_token')
        .slice(refreshesBefore);
      if (c.expectRefresh === 'none') {
        // Nothing to refresh with and no expiry: the API's 401 reaches the caller, the connection stays.
        expect(second.status).toBe(401);
        expect(refreshes).toEqual([]);
      } else {
        expect(second.status).toBe(200);
        expect(refreshes).toEqual([expect.objectContaining({ status: 200, auth: c.shape.clientAuth })]);
        expect(server.apiCalls.at(-1)).toMatchObject({ login: 'alice', status: 200 });
        // Rotating: the old refresh token is gone and the new one works for the next refresh.
        expect(server.liveRefreshTokens()).toBe(liveBefore);
        server.expireAccessTokens();
        expect((await call()).status).toBe(200);
      }
      expect(await statusOf(user, connectionId!)).toBe('active');
    },
  );

  it('google: the account comes from the validated ID token, asked with access_type=offline and prompt=consent', async () => {
    const { back, authorizationUrl } = await connect('google', 'u-google-account', 'carol');
    expect(authorizationUrl.searchParams.get('access_type')).toBe('offline');
    expect(authorizationUrl.searchParams.get('prompt')).toBe('consent');
    expect(authorizationUrl.searchParams.get('nonce')).toBeTruthy();
    const view = await (
      await svc.api('u-google-account', `/api/v1/connections/${back.searchParams.get('connection')}`)
    ).json();
    expect(view.account).toEqual({ id: 'sub-carol', name: 'carol', email: 'carol@example.com' });
  });

  it('slack: scopes go as user_scope, comma-separated, and the user token from authed_user is stored', async () => {
    const { authorizationUrl } = await connect('slack', 'u-slack-scopes');
    expect(authorizationUrl.searchParams.has('scope')).toBe(false);
    expect(authorizationUrl.searchParams.get('user_scope')).toBe(
      'channels:read,channels:history,chat:write,users:read',
    );
  });

  it('github: a token without expiry is never scheduled for refresh and has no refresh token', async () => {
    const { connectionId } = await connect('github', 'u-github-noexp');
    const row = await svc.service.ctx.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId!)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      access_token_expires_at: null,
      next_refresh_at: null,
      refresh_token_sealed: null,
    });
    const view = await (await svc.api('u-github-noexp', `/api/v1/connections/${connectionId}`)).json();
    expect(view.account).toEqual({ id: '4242', name: 'alice name', email: 'alice@example.com' });
    expect(view.scopes.length).toBeGreaterThan(0);
  });

  it("atlassian: the connection's proxy base is the first granted site under the integration's base", async () => {
    const server = servers.get('atlassian')!;
    const { connectionId } = await connect('atlassian', 'u-atl-bob', 'bob');
    const r = await svc.api('u-atl-bob', `/api/v1/connections/${connectionId}/proxy/rest/api/3/myself`);
    expect(r.status).toBe(200);
    expect(server.apiCalls.at(-1)).toMatchObject({
      login: 'bob',
      url: `/ex/jira/${cloudIds.bob}/rest/api/3/myself`,
    });
  });

  it('atlassian: an account that granted the app no site cannot connect, and nothing is stored', async () => {
    const { back } = await connect('atlassian', 'u-atl-nosite', 'nobody');
    expect(back.searchParams.get('outcome')).toBe('failed');
    expect(await (await svc.api('u-atl-nosite', '/api/v1/connections')).json()).toEqual([]);
  });

  it.each([
    ['slack-rotation', 'a 200 {ok:false}'],
    ['github-app', 'a 200 {error}'],
    ['hubspot', 'a {status} body'],
  ])(
    '%s: token errors as %s are read as OAuth errors: unknown ones retried, a dead refresh token needs reauth',
    async (id) => {
      const server = servers.get(id)!;
      const user = `u-errors-${id}`;
      const { connectionId } = await connect(id, user);
      const tokens = svc.service.ctx.tokens;
      const before = await tokens.getAccessToken(connectionId!);

      server.failNext(server.errorFor('unknown'));
      const kept = await tokens.getAccessToken(connectionId!, { force: true });
      expect(kept.value).toBe(before.value); // transient: the valid token is used, nothing changes
      expect(await statusOf(user, connectionId!)).toBe('active');

      server.failNext(server.errorFor('bad_refresh'));
      await expect(tokens.getAccessToken(connectionId!, { force: true })).rejects.toMatchObject({
        code: 'connection_needs_reauth',
      });
      expect(await statusOf(user, connectionId!)).toBe('needs_reauth');
    },
  );

  it.each(['slack', 'github', 'hubspot'])(
    '%s: a client the provider refuses (in its own error shape) fails the Connect as a configuration problem',
    async (id) => {
      const server = servers.get(id)!;
      server.failNext(server.errorFor('bad_client'));
      const { back } = await connect(id, `u-badclient-${id}`);
      expect(back.searchParams.get('outcome')).toBe('failed');
      const audit = await svc.service.ctx.audit.list({ limit: 5 });
      const failure = audit.find(
        (a) => a.action === 'authorization.failed' && a.actor === `u-badclient-${id}`,
      );
      expect(JSON.parse(failure!.data)).toEqual({ reason: 'config_error:invalid_client' });
    },
  );

  it('no token or client secret reaches a log line', () => {
    const text = svc.logs.join('\n');
    expect(text).not.toContain(clientSecret);
    expect(text).not.toMatch(/\b(?:at|rt|code)-[A-Za-z0-9_-]{22}\b/);
  });
});
