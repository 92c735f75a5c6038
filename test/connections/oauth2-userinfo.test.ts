/**
 * `type: oauth2` providers have no ID token: with `userinfoEndpoint` the connected account comes
 * from it, after the code exchange only. Real peers: panva's oidc-provider as the plain OAuth 2
 * authorization server (no `openid` scope, so no ID token) with its real sign-in pages, and a
 * GitHub-like `GET /user` that resolves the bearer token at that same provider.
 *
 * oidc-provider's own userinfo (`/me`) refuses access tokens without the `openid` scope (403
 * insufficient_scope), so it cannot be the userinfo of a plain OAuth 2 flow; it serves here as a
 * real userinfo endpoint that says no.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { userinfoMaxBytes } from '../../src/oauth/userinfo.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';
import {
  type ReceivedRequest,
  type RecordingServer,
  startRecordingServer,
} from '../support/webhook-receiver.js';

const clientSecret = 'userinfo-test-client-secret-0123456789';
/** The service's outbound timeout: short, so the slow-userinfo case stays fast. */
const outboundTimeoutMs = 2_000;
/** In every body the service must not pass on (logs, errors). */
const bodyMarker = 'userinfo-body-marker-5d1c';

/** The GitHub-like server's users, by oidc-provider login. */
const people: Record<string, { id: number; name: string; email: string }> = {
  alice: { id: 583231, name: 'The Octocat', email: 'octo@example.com' },
  bob: { id: 583232, name: 'Bob Builder', email: 'bob@example.com' },
};

/** How the GitHub-like server answers a valid token. */
type Mode =
  | 'github'
  | 'oidc'
  | 'sub-not-string'
  | 'no-at-email'
  | 'large-but-fine'
  | 'status-500'
  | 'html'
  | 'huge-chunked'
  | 'huge-declared'
  | 'array'
  | 'slow';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(body),
});

const chunked = { 'transfer-encoding': 'chunked' };

describe.each(databaseKinds)('oauth2 provider with userinfoEndpoint on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let github: RecordingServer;
  let svc: TestService;
  let mode: Mode = 'github';
  /** Requests to oidc-provider's own userinfo, with its answer's status. */
  const meRequests: Array<{ authorization: string | undefined; status: number }> = [];

  /** The access token, if oidc-provider issued it and it is still valid: the account it belongs to. */
  async function accountOfToken(request: ReceivedRequest): Promise<string | undefined> {
    const token = /^Bearer (\S+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
    if (token === undefined) return undefined;
    const accessTokens = provider.provider.AccessToken as unknown as {
      find(value: string): Promise<{ accountId: string } | undefined>;
    };
    return (await accessTokens.find(token))?.accountId;
  }

  async function answerUser(request: ReceivedRequest) {
    const login = await accountOfToken(request);
    const person = login === undefined ? undefined : people[login];
    if (request.url !== '/user' || login === undefined || person === undefined) {
      return json(
        401,
        { message: 'Bad credentials' },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      );
    }
    const user = { login, id: person.id, name: person.name, email: person.email, bio: bodyMarker };
    switch (mode) {
      case 'github':
        return json(200, user);
      case 'oidc':
        return json(200, { sub: `oidc-${login}`, preferred_username: login, email: person.email });
      case 'sub-not-string':
        return json(200, { ...user, sub: person.id });
      case 'no-at-email':
        return json(200, { ...user, name: undefined, email: 'not-an-address' });
      case 'large-but-fine':
        return json(200, { ...user, bio: 'x'.repeat(userinfoMaxBytes - 1_000) });
      case 'status-500':
        return json(500, user);
      case 'html':
        return { status: 200, headers: { 'content-type': 'text/html' }, body: `<h1>${bodyMarker}</h1>` };
      case 'huge-chunked': // no content-length: refused while reading
        return json(200, { ...user, bio: bodyMarker.repeat(userinfoMaxBytes / 16) }, chunked);
      case 'huge-declared': {
        const body = JSON.stringify({ ...user, bio: bodyMarker.repeat(userinfoMaxBytes / 16) });
        return { status: 200, headers: { 'content-length': String(Buffer.byteLength(body)) }, body };
      }
      case 'array':
        return json(200, [user]);
      case 'slow':
        await sleep(outboundTimeoutMs + 1_000);
        return json(200, user);
    }
  }

  beforeAll(async () => {
    database = await createTestDatabase(kind);
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
      if (ctx.path === '/me') {
        const c = ctx as unknown as { status: number; get(header: string): string };
        meRequests.push({ authorization: c.get('authorization') || undefined, status: c.status });
      }
    });
    github = await startRecordingServer({ answerAsync: answerUser });
    const discovery = (await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json()) as {
      authorization_endpoint: string;
      token_endpoint: string;
      userinfo_endpoint: string;
    };
    const endpoints = {
      type: 'oauth2',
      issuer: provider.issuer, // oidc-provider sends RFC 9207 `iss`
      authorizationEndpoint: discovery.authorization_endpoint,
      tokenEndpoint: discovery.token_endpoint,
      clientId: 'nunq',
      clientSecret,
    };
    svc = await startTestService({
      database,
      port,
      serviceOptions: {
        background: false,
        fetch: createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: outboundTimeoutMs }),
      },
      providers: [
        { id: 'gh', ...endpoints, userinfoEndpoint: `${github.url}/user` },
        { id: 'me', ...endpoints, userinfoEndpoint: discovery.userinfo_endpoint },
      ],
      integrations: [
        { id: 'repos', name: 'Repos', provider: 'gh', scopes: ['profile', 'email', 'offline_access'] },
        { id: 'profile', name: 'Profile', provider: 'me', scopes: ['profile', 'email'] },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await github?.close();
    await provider?.close();
    await database?.drop();
  });

  const browserFor = (user: string) => signedInAgent(svc, user);

  /** Connects `integration` for `user` through the provider's pages as `login`; the connection id. */
  async function connect(user: string, login: string, integration = 'repos') {
    const ua = await browserFor(user);
    const authorizationUrl = await ua.startConnect(svc.url, integration);
    const done = await ua.get((await ua.signInAtOidcProvider(authorizationUrl, login)).href);
    const back = new URL(done.headers.get('location')!, svc.url);
    expect(back.searchParams.get('outcome')).toBe('connected');
    return { connectionId: back.searchParams.get('connection')!, authorizationUrl };
  }

  async function accountOf(user: string, connectionId: string) {
    const r = await svc.api(user, `/api/v1/connections/${connectionId}`);
    expect(r.status).toBe(200);
    return ((await r.json()) as { account: Record<string, string> }).account;
  }

  const userRequests = () => github.received.filter((r) => r.url === '/user');

  it('maps GitHub-style JSON to the account, asking with the bearer access token', async () => {
    mode = 'github';
    const before = userRequests().length;
    const { connectionId, authorizationUrl } = await connect('u-gh', 'alice');
    // A plain OAuth 2 flow: no openid, no nonce, so no ID token to take the account from.
    expect(authorizationUrl.searchParams.get('scope')).not.toContain('openid');
    expect(authorizationUrl.searchParams.has('nonce')).toBe(false);

    expect(await accountOf('u-gh', connectionId)).toEqual({
      id: '583231',
      name: 'The Octocat',
      email: 'octo@example.com',
    });
    const requests = userRequests().slice(before);
    expect(requests).toHaveLength(1);
    const token = await svc.service.ctx.tokens.getAccessToken(connectionId);
    expect(requests[0]).toMatchObject({ method: 'GET', body: '' });
    expect(requests[0]!.headers.authorization).toBe(token.authorization);
    expect(requests[0]!.headers.accept).toBe('application/json');
  });

  it.each([
    ['oidc', { id: 'oidc-alice', name: 'alice', email: 'octo@example.com' }],
    ['no-at-email', { id: '583231', name: 'alice' }],
    ['large-but-fine', { id: '583231', name: 'The Octocat', email: 'octo@example.com' }],
  ] as const)('maps a %s answer', async (answer, account) => {
    mode = answer;
    const { connectionId } = await connect(`u-${answer}`, 'alice');
    expect(await accountOf(`u-${answer}`, connectionId)).toEqual(account);
  });

  it.each([
    'status-500',
    'html',
    'huge-chunked',
    'huge-declared',
    'array',
    'sub-not-string',
    'slow',
  ] as const)('still connects, with an empty account, when userinfo answers %s', async (answer) => {
    mode = answer;
    const before = userRequests().length;
    const startedAt = Date.now();
    const { connectionId } = await connect(`u-${answer}`, 'alice');
    expect(userRequests().length).toBe(before + 1);
    expect(await accountOf(`u-${answer}`, connectionId)).toEqual({});
    if (answer === 'slow') expect(Date.now() - startedAt).toBeGreaterThanOrEqual(outboundTimeoutMs);
    // The token works: only the account is missing.
    expect((await svc.service.ctx.tokens.getAccessToken(connectionId)).value.length).toBeGreaterThan(0);
  });

  it("connects with an empty account when oidc-provider's own userinfo refuses a token without openid", async () => {
    const before = meRequests.length;
    const { connectionId } = await connect('u-me', 'alice', 'profile');
    const token = await svc.service.ctx.tokens.getAccessToken(connectionId);
    expect(meRequests.slice(before)).toEqual([{ authorization: token.authorization, status: 403 }]);
    expect(await accountOf('u-me', connectionId)).toEqual({});
  });

  it('asks before replacing the account when Reconnect signs in as someone else', async () => {
    mode = 'github';
    const { connectionId } = await connect('u-re', 'alice');
    const reconnect = async (login: string) => {
      const ua = await browserFor('u-re'); // a fresh browser: the provider asks who signs in
      const authorizationUrl = await ua.startReconnect(svc.url, connectionId);
      const done = await ua.get((await ua.signInAtOidcProvider(authorizationUrl, login)).href);
      return { ua, location: done.headers.get('location')! };
    };

    // The same account again: replaced without asking.
    const same = await reconnect('alice');
    expect(new URL(same.location, svc.url).searchParams.get('outcome')).toBe('reconnected');

    // Someone else: nothing replaced yet, a confirmation page asks.
    const other = await reconnect('bob');
    expect(other.location).toMatch(new RegExp(`^/connections/${connectionId}/confirm/[0-9a-f-]{36}$`));
    expect((await accountOf('u-re', connectionId)).id).toBe('583231');
    const page = await other.ua.get(`${svc.url}${other.location}`);
    expect(page.body).toContain('Bob Builder');
    expect(page.body).toContain('The Octocat');

    const me = JSON.parse((await other.ua.get(`${svc.url}/api/v1/me`)).body) as { csrfToken: string };
    const replaced = await other.ua.post(`${svc.url}${other.location}`, {
      decision: 'replace',
      _csrf: me.csrfToken,
    });
    expect(new URL(replaced.headers.get('location')!, svc.url).searchParams.get('outcome')).toBe(
      'reconnected',
    );
    expect(await accountOf('u-re', connectionId)).toEqual({
      id: '583232',
      name: 'Bob Builder',
      email: 'bob@example.com',
    });

    // Nobody the provider names (userinfo fails): asked all the same, and Keep keeps Bob.
    mode = 'status-500';
    const unnamed = await reconnect('bob');
    expect(unnamed.location).toMatch(new RegExp(`^/connections/${connectionId}/confirm/[0-9a-f-]{36}$`));
    const unnamedPage = await unnamed.ua.get(`${svc.url}${unnamed.location}`);
    expect(unnamedPage.body).toContain('We could not tell which account you signed in with');
    expect(unnamedPage.body).toContain('Bob Builder');
    const me2 = JSON.parse((await unnamed.ua.get(`${svc.url}/api/v1/me`)).body) as { csrfToken: string };
    const kept = await unnamed.ua.post(`${svc.url}${unnamed.location}`, {
      decision: 'keep',
      _csrf: me2.csrfToken,
    });
    expect(kept.status).toBe(303);
    expect(await accountOf('u-re', connectionId)).toEqual({
      id: '583232',
      name: 'Bob Builder',
      email: 'bob@example.com',
    });
  });

  it('makes no userinfo request on refresh, and keeps the account', async () => {
    mode = 'github';
    const { connectionId } = await connect('u-refresh', 'alice');
    const old = await svc.service.ctx.tokens.getAccessToken(connectionId);
    const refreshes = provider.counters.tokenRequests.refresh_token ?? 0;
    const before = userRequests().length;

    const fresh = await svc.service.ctx.tokens.getAccessToken(connectionId, { force: true });
    expect(provider.counters.tokenRequests.refresh_token).toBe(refreshes + 1);
    expect(fresh.value).not.toBe(old.value);
    expect(userRequests().length).toBe(before);
    expect(await accountOf('u-refresh', connectionId)).toEqual({
      id: '583231',
      name: 'The Octocat',
      email: 'octo@example.com',
    });
  });

  it('logs neither the access tokens nor anything userinfo answered', () => {
    const tokens = github.received.map((r) => String(r.headers.authorization).replace(/^Bearer /, ''));
    expect(tokens.length).toBeGreaterThan(5);
    for (const line of svc.logs) {
      expect(line).not.toContain(bodyMarker);
      for (const token of tokens) expect(line).not.toContain(token);
    }
  });
});
