/**
 * Regression (issue 8, security 1): a flow is bound to the browser that started it. A flow that
 * finishes in a browser that did not start it (started through the API with a bearer, or in
 * another browser or session) stores nothing: its tokens are parked, sealed, and our own page
 * asks, with the CSRF token, in the browser the provider sent back. On SQLite and PostgreSQL,
 * against a real oidc-provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent, type UserAgentResponse } from '../support/user-agent.js';

const clientSecret = 'binding-test-client-secret-0123456789';
const parkedPath = /^\/oauth\/confirm\/[0-9a-f-]{36}$/;

describe.each(databaseKinds)('flows bound to the browser that started them, on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let svc: TestService;
  /** Added to the service's clock, to let parked results expire. */
  let skewMs = 0;
  let revocationRequests = 0;

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
      accounts: { alice: { name: 'Alice Example', email: 'alice@example.com' } },
    });
    provider.provider.use(async (ctx, next) => {
      if (ctx.path === '/token/revocation') revocationRequests += 1;
      await next();
    });
    svc = await startTestService({
      database,
      port,
      serviceOptions: { background: false, clock: { now: () => Date.now() + skewMs } },
      providers: [{ id: 'p', type: 'oidc', issuer: provider.issuer, clientId: 'nunq', clientSecret }],
      integrations: [
        { id: 'docs', name: 'Docs', provider: 'p', scopes: ['openid', 'profile', 'email', 'offline_access'] },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await provider?.close();
    await database?.drop();
  });

  const db = () => svc.service.ctx.store.db;
  const connectionsOf = (userId: string) =>
    db().selectFrom('connections').selectAll().where('user_id', '=', userId).execute();
  const parkedOf = (userId: string) =>
    db().selectFrom('pending_confirmations').selectAll().where('user_id', '=', userId).execute();

  /** Starts a Connect through the API with a bearer, as the platform does; the authorization URL. */
  async function startWithBearer(userId: string, returnTo = '/'): Promise<string> {
    const r = await svc.api(userId, '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'docs', returnTo }),
    });
    expect(r.status).toBe(201);
    return ((await r.json()) as { authorizationUrl: string }).authorizationUrl;
  }

  /** Signs in at the provider (as alice) in `ua` and delivers the callback there; the callback's answer. */
  async function finishIn(
    ua: UserAgent,
    authorizationUrl: string | URL,
    login = 'alice',
  ): Promise<UserAgentResponse> {
    const callback = await ua.signInAtOidcProvider(authorizationUrl, login);
    return ua.get(callback.href);
  }

  const pathOf = (r: UserAgentResponse) => new URL(r.location ?? r.url).pathname;

  it('a flow started in this browser completes with no confirmation', async () => {
    const ua = await signedInAgent(svc, 'u-browser');
    const done = await finishIn(ua, await ua.startConnect(svc.url, 'docs'));
    expect(done.status).toBe(302);
    const back = new URL(done.location!);
    expect(back.pathname).toBe('/');
    expect(back.searchParams.get('outcome')).toBe('connected');
    expect(await connectionsOf('u-browser')).toHaveLength(1);
    expect(await parkedOf('u-browser')).toEqual([]);
  });

  it('an API-started flow finished in the user’s own browser asks once, stores nothing before the click, then connects', async () => {
    const userId = 'u-api';
    const ua = await signedInAgent(svc, userId);
    const callbackAnswer = await finishIn(ua, await startWithBearer(userId, '/after'));
    expect(callbackAnswer.status).toBe(302);
    expect(pathOf(callbackAnswer)).toMatch(parkedPath);
    expect(await connectionsOf(userId)).toEqual([]);
    const [parked] = await parkedOf(userId);
    expect(parked).toMatchObject({ kind: 'connect', integration_id: 'docs' });
    expect(Number(parked!.expires_at) - Number(parked!.created_at)).toBeLessThanOrEqual(10 * 60 * 1000);

    const page = await ua.get(callbackAnswer.location!);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Finish connecting Docs?');
    expect(page.body).toMatch(/data-testid="parked-user">[^<]*<strong><code>u-api<\/code><\/strong>/);
    expect(page.body).toContain('Alice Example');
    // Never a code, state or token in the page.
    const callbackUrl = new URL(ua.visited.find((u) => u.includes('/oauth/callback'))!);
    expect(page.body).not.toContain(callbackUrl.searchParams.get('code')!);
    expect(page.body).not.toContain(callbackUrl.searchParams.get('state')!);
    expect(page.body).not.toMatch(/access_token|refresh_token/);

    const answered = await ua.answerParked(callbackAnswer, 'connect');
    expect(answered.status).toBe(303);
    const back = new URL(answered.location!);
    expect(back.pathname).toBe('/after');
    expect(back.searchParams.get('outcome')).toBe('connected');
    const [connection] = await connectionsOf(userId);
    expect(connection).toMatchObject({ id: back.searchParams.get('connection'), status: 'active' });
    expect(connection!.account_name).toBe('Alice Example');
    expect(await parkedOf(userId)).toEqual([]);
    // Answered once: the page and a second click find nothing.
    expect((await ua.get(callbackAnswer.location!)).status).toBe(404);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    expect((await ua.post(callbackAnswer.location!, { decision: 'connect', _csrf: csrf })).status).toBe(404);
    expect(await connectionsOf(userId)).toHaveLength(1);
  });

  it('a flow started in another browser of the same user asks too, and an API-started Reconnect keeps the connection id', async () => {
    const userId = 'u-two-browsers';
    const first = await signedInAgent(svc, userId);
    const second = await signedInAgent(svc, userId);
    const started = await first.startConnect(svc.url, 'docs');
    const answer = await finishIn(second, started);
    expect(pathOf(answer)).toMatch(parkedPath);
    expect(await connectionsOf(userId)).toEqual([]);
    const connected = new URL((await second.answerParked(answer)).location!);
    expect(connected.searchParams.get('outcome')).toBe('connected');
    const id = connected.searchParams.get('connection')!;

    const r = await svc.api(userId, `/api/v1/connections/${id}/reconnect`, { method: 'POST' });
    const { authorizationUrl } = (await r.json()) as { authorizationUrl: string };
    const reconnectAnswer = await finishIn(second, authorizationUrl);
    expect(pathOf(reconnectAnswer)).toMatch(parkedPath);
    const before = (await connectionsOf(userId))[0]!;
    expect((await parkedOf(userId))[0]).toMatchObject({ kind: 'reconnect', connection_id: id });
    const page = await second.get(reconnectAnswer.location!);
    expect(page.body).toContain('Reconnect Docs');
    const reconnected = new URL((await second.answerParked(reconnectAnswer)).location!);
    expect(reconnected.searchParams.get('outcome')).toBe('reconnected');
    expect(reconnected.searchParams.get('connection')).toBe(id);
    const after = (await connectionsOf(userId))[0]!;
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.access_token_sealed).not.toBe(before.access_token_sealed);
  });

  it('a forged confirmation changes nothing: no CSRF token, another origin, a bearer, or another session of the same user', async () => {
    const userId = 'u-forged';
    const ua = await signedInAgent(svc, userId);
    const answer = await finishIn(ua, await startWithBearer(userId));
    const target = answer.location!;
    const page = await ua.get(target);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;

    // The browser's cookie without the CSRF token (a cross-site form post).
    const noToken = await ua.post(target, { decision: 'connect' });
    expect(noToken.status).toBe(403);
    const wrongToken = await ua.post(target, { decision: 'connect', _csrf: `${csrf.slice(0, -2)}xx` });
    expect(wrongToken.status).toBe(403);
    // The right token from another origin.
    const cookie = Object.entries(ua.cookies(svc.url))
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    const crossOrigin = await fetch(target, {
      method: 'POST',
      headers: {
        cookie,
        origin: 'http://localhost:1',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ decision: 'connect', _csrf: csrf }),
      redirect: 'manual',
    });
    expect(crossOrigin.status).toBe(403);
    // The same user with a bearer (needs no CSRF token) or in another session: not this browser.
    const bearer = await svc.api(userId, new URL(target).pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'connect' }),
      redirect: 'manual',
    });
    expect(bearer.status).toBe(404);
    const elsewhere = await signedInAgent(svc, userId);
    expect((await elsewhere.get(target)).status).toBe(404);
    const otherCsrf = /name="_csrf" value="([^"]+)"/.exec((await elsewhere.get(`${svc.url}/`)).body)![1]!;
    expect((await elsewhere.post(target, { decision: 'connect', _csrf: otherCsrf })).status).toBe(404);
    // Another user, signed in, with their own token.
    const mallory = await signedInAgent(svc, 'u-forged-mallory');
    expect((await mallory.get(target)).status).toBe(404);

    expect(await connectionsOf(userId)).toEqual([]);
    expect(await parkedOf(userId)).toHaveLength(1);
    // The real click still works.
    expect(new URL((await ua.answerParked(answer)).location!).searchParams.get('outcome')).toBe('connected');
  });

  it('bad input on the confirmation routes is a 400 problem and changes nothing', async () => {
    const userId = 'u-bad-input';
    const ua = await signedInAgent(svc, userId);
    const answer = await finishIn(ua, await startWithBearer(userId));
    const page = await ua.get(answer.location!);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    for (const [path, decision] of [
      ['/oauth/confirm/not-a-uuid', 'connect'],
      [new URL(answer.location!).pathname, 'replace'],
      [new URL(answer.location!).pathname, ''],
    ] as const) {
      const r = await ua.post(`${svc.url}${path}`, { decision, _csrf: csrf });
      expect(r.status, `${path} ${decision}`).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await ua.get(`${svc.url}/oauth/confirm/not-a-uuid`)).status).toBe(400);
    expect(await connectionsOf(userId)).toEqual([]);
    expect(await parkedOf(userId)).toHaveLength(1);
  });

  it('Cancel discards the parked tokens and revokes them at the provider', async () => {
    const userId = 'u-cancel';
    const ua = await signedInAgent(svc, userId);
    // An account no connection uses: its grant is the declined flow's alone.
    const answer = await finishIn(ua, await startWithBearer(userId), 'carol');
    const [parked] = await parkedOf(userId);
    const refreshToken = svc.service.ctx.sealer.open(parked!.tokens_sealed, {
      table: 'pending_confirmations',
      rowId: parked!.id,
      field: 'tokens_sealed',
    });
    const before = revocationRequests;
    const cancelled = await ua.answerParked(answer, 'cancel');
    expect(cancelled.status).toBe(303);
    expect(new URL(cancelled.location!).searchParams.get('outcome')).toBe('cancelled');
    expect(await connectionsOf(userId)).toEqual([]);
    expect(await parkedOf(userId)).toEqual([]);
    expect(revocationRequests).toBe(before + 1);
    // The grant is gone at the provider: its refresh token no longer works.
    const { refreshToken: rt } = JSON.parse(refreshToken) as { refreshToken: string };
    const refreshed = await fetch(`${provider.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`nunq:${clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }),
    });
    expect(refreshed.status).toBe(400);
    expect(((await refreshed.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it("Cancel never revokes a grant a kept connection may share: the user's working connection survives", async () => {
    const userId = 'u-cancel-shared';
    // A working connection as dave, made in the browser that started it.
    const ua = await signedInAgent(svc, userId);
    const first = await ua.signInAtOidcProvider(await ua.startConnect(svc.url, 'docs'), 'dave');
    await ua.get(first.href);
    const [connection] = await connectionsOf(userId);
    expect(connection?.account_id).toBe('dave');
    // A second flow as dave, started with a bearer, parks; the user cancels it. The provider
    // keeps one grant per account and client: revoking the declined refresh token would end the
    // working connection's grant too.
    const answer = await finishIn(ua, await startWithBearer(userId), 'dave');
    const before = revocationRequests;
    const cancelled = await ua.answerParked(answer, 'cancel');
    expect(new URL(cancelled.location!).searchParams.get('outcome')).toBe('cancelled');
    expect(revocationRequests).toBe(before);
    const audit = await db()
      .selectFrom('audit_log')
      .select('data')
      .where('action', '=', 'authorization.cancelled')
      .where('actor', '=', userId)
      .execute();
    expect(audit.map((a) => JSON.parse(a.data).revocation)).toEqual(['skipped_shared_grant']);
    // The working connection still refreshes.
    const refreshed = await svc.service.ctx.tokens.getAccessToken(connection!.id, { force: true });
    expect(refreshed.value.length).toBeGreaterThan(10);
    expect((await connectionsOf(userId))[0]?.status).toBe('active');
  });

  it('parked results expire after 10 minutes: the page and its button find nothing, nothing is stored', async () => {
    const userId = 'u-expired';
    const ua = await signedInAgent(svc, userId);
    const answer = await finishIn(ua, await startWithBearer(userId));
    const page = await ua.get(answer.location!);
    expect(page.status).toBe(200);
    skewMs = 10 * 60 * 1000 + 1000;
    try {
      expect((await ua.get(answer.location!)).status).toBe(404);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
      expect((await ua.post(answer.location!, { decision: 'connect', _csrf: csrf })).status).toBe(404);
    } finally {
      skewMs = 0;
    }
    expect(await connectionsOf(userId)).toEqual([]);
  });
});
