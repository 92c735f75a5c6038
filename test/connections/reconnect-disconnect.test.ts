import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

const clientSecret = 'reconnect-test-client-secret-0123456789';

describe.each(databaseKinds)('reconnect as another account, and disconnect retries on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let svc: TestService;
  let revocationDown = false;
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
    });
    provider.provider.use(async (ctx, next) => {
      if (ctx.path === '/token/revocation') {
        revocationRequests++;
        if (revocationDown) {
          Object.assign(ctx, { status: 503, body: 'unavailable' });
          return;
        }
      }
      await next();
    });
    svc = await startTestService({
      database,
      port,
      serviceOptions: { background: false },
      providers: [{ id: 'p', type: 'oidc', issuer: provider.issuer, clientId: 'nunq', clientSecret }],
      integrations: [
        { id: 'docs', name: 'Docs', provider: 'p', scopes: ['openid', 'profile', 'offline_access'] },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await provider?.close();
    await database?.drop();
  });

  const browserFor = (user: string) => signedInAgent(svc, user);

  async function signIn(ua: UserAgent, login: string, path: string, method: 'GET' | 'POST' = 'GET') {
    let location: string;
    if (method === 'GET') {
      // A link to /connect/:id: its confirmation page, then the page's Connect button.
      location = (await ua.startConnect(svc.url, path.replace(/^\/connect\//, ''))).href;
    } else {
      const me = JSON.parse((await ua.get(`${svc.url}/api/v1/me`)).body);
      location = (await ua.post(`${svc.url}${path}`, { _csrf: me.csrfToken })).headers.get('location')!;
    }
    const callback = await ua.signInAtOidcProvider(location, login);
    return ua.get(callback.href);
  }

  it('asks before replacing the account on Reconnect, and replaces only when told', async () => {
    const ua = await browserFor('u1');
    const first = await signIn(ua, 'alice', '/connect/docs');
    const connectionId = new URL(first.headers.get('location')!, svc.url).searchParams.get('connection')!;

    // Reconnect, but sign in as bob: nothing is replaced yet; a confirm page asks.
    await provider.revokeGrants(); // ends the provider session's grant so a new login is asked for
    const ua2 = await browserFor('u1');
    const second = await signIn(ua2, 'bob', `/connections/${connectionId}/reconnect`, 'POST');
    const confirmPath = second.headers.get('location')!;
    expect(confirmPath).toMatch(new RegExp(`^/connections/${connectionId}/confirm/[0-9a-f-]{36}$`));
    expect((await (await svc.api('u1', `/api/v1/connections/${connectionId}`)).json()).account.id).toBe(
      'alice',
    );
    const page = await ua2.get(`${svc.url}${confirmPath}`);
    expect(page.body).toContain('Bob');
    expect(page.body).toContain('Alice');
    // Another user cannot answer it.
    const mallory = await browserFor('u-mallory');
    expect((await mallory.get(`${svc.url}${confirmPath}`)).status).toBe(404);

    // "Keep" discards the new tokens.
    const me = JSON.parse((await ua2.get(`${svc.url}/api/v1/me`)).body);
    const kept = await ua2.post(`${svc.url}${confirmPath}`, { decision: 'keep', _csrf: me.csrfToken });
    expect(kept.status).toBe(303);
    expect((await (await svc.api('u1', `/api/v1/connections/${connectionId}`)).json()).account.id).toBe(
      'alice',
    );
    expect(
      (await ua2.post(`${svc.url}${confirmPath}`, { decision: 'replace', _csrf: me.csrfToken })).status,
    ).toBe(404);

    // Again, and this time "replace": same connection id, bob's account.
    const third = await signIn(ua2, 'bob', `/connections/${connectionId}/reconnect`, 'POST');
    const confirm2 = third.headers.get('location')!;
    const replaced = await ua2.post(`${svc.url}${confirm2}`, { decision: 'replace', _csrf: me.csrfToken });
    const back = new URL(replaced.headers.get('location')!, svc.url);
    expect(back.searchParams.get('outcome')).toBe('reconnected');
    expect(back.searchParams.get('connection')).toBe(connectionId);
    expect((await (await svc.api('u1', `/api/v1/connections/${connectionId}`)).json()).account.id).toBe(
      'bob',
    );
    // The sealed tokens waiting for confirmation are gone.
    expect(await svc.service.ctx.store.db.selectFrom('pending_confirmations').selectAll().execute()).toEqual(
      [],
    );
  });

  it('Disconnect never blocks on a failing revocation endpoint and retries it in the background', async () => {
    const ua = await browserFor('u2');
    const done = await signIn(ua, 'carol', '/connect/docs');
    const connectionId = new URL(done.headers.get('location')!, svc.url).searchParams.get('connection')!;
    revocationDown = true;
    const before = revocationRequests;
    const r = await svc.api('u2', `/api/v1/connections/${connectionId}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    expect(revocationRequests).toBe(before + 1);
    expect((await svc.api('u2', `/api/v1/connections/${connectionId}`)).status).toBe(404);
    const queued = await svc.service.ctx.store.db.selectFrom('revocations').selectAll().execute();
    expect(queued).toHaveLength(1);
    expect(queued[0]!.token_sealed).toMatch(/^v1\./);

    // Still down: the retry fails and backs off; then the provider recovers and the retry revokes.
    await svc.service.ctx.store.db.updateTable('revocations').set({ next_attempt_at: 0 }).execute();
    expect(await svc.service.ctx.revocations.retryDue()).toBe(0);
    revocationDown = false;
    await svc.service.ctx.store.db.updateTable('revocations').set({ next_attempt_at: 0 }).execute();
    expect(await svc.service.ctx.revocations.retryDue()).toBe(1);
    const finished = await svc.service.ctx.store.db
      .selectFrom('revocations')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(finished.done_at).not.toBeNull();
    expect(finished.token_sealed).toBeNull();
    expect(revocationRequests).toBe(before + 3);
  });
});
