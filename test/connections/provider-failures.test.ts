import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientSecret = 'failures-test-client-secret-0123456789';

describe.each(databaseKinds)('provider failures during connect on %s', (kind) => {
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let garbage: Server;
  let svc: TestService;
  let tokenEndpointDown = false;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const port = await freePort();
    const closedPort = await freePort();
    garbage = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>oops</html>'),
    );
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', () => r()));
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
      if (tokenEndpointDown && ctx.path === '/token') {
        (ctx as unknown as { status: number; body: string }).status = 503;
        (ctx as unknown as { status: number; body: string }).body = 'down for maintenance';
        return;
      }
      await next();
    });
    svc = await startTestService({
      database,
      port,
      serviceOptions: { background: false },
      providers: [
        { id: 'good', type: 'oidc', issuer: provider.issuer, clientId: 'nunq', clientSecret },
        {
          id: 'down',
          type: 'oidc',
          issuer: `http://127.0.0.1:${closedPort}`,
          clientId: 'nunq',
          clientSecret,
        },
        {
          id: 'garbage',
          type: 'oidc',
          issuer: `http://127.0.0.1:${(garbage.address() as { port: number }).port}`,
          clientId: 'nunq',
          clientSecret,
        },
      ],
      integrations: [
        { id: 'good', name: 'Good', provider: 'good', scopes: ['openid', 'profile'] },
        { id: 'down', name: 'Down', provider: 'down', scopes: ['openid'] },
        { id: 'garbage', name: 'Garbage', provider: 'garbage', scopes: ['openid'] },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await provider?.close();
    await new Promise((r) => garbage?.close(r));
    await database?.drop();
  });

  const start = (user: string, integration: string) =>
    svc.api(user, '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration }),
    });

  it('a provider that is down gives 503 provider_unavailable, not a 5xx crash', async () => {
    const r = await start('u1', 'down');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect((await r.json()).code).toBe('provider_unavailable');
  });

  it('a provider that answers garbage gives a clear problem', async () => {
    const r = await start('u1', 'garbage');
    expect([502, 503]).toContain(r.status);
    const body = await r.json();
    expect(['provider_unavailable', 'provider_misconfigured']).toContain(body.code);
    expect(JSON.stringify(body)).not.toContain('oops');
  });

  const signedIn = (user: string) => signedInAgent(svc, user);

  it('a token endpoint that fails at the callback leaves nothing behind', async () => {
    const ua = await signedIn('u2');
    const r = await start('u2', 'good');
    const callback = await ua.signInAtOidcProvider((await r.json()).authorizationUrl, 'bob');
    tokenEndpointDown = true;
    try {
      const done = await ua.get(callback.href);
      expect(new URL(done.headers.get('location')!, svc.url).searchParams.get('outcome')).toBe('failed');
    } finally {
      tokenEndpointDown = false;
    }
    expect(await (await svc.api('u2', '/api/v1/connections')).json()).toEqual([]);
    const audit = await svc.service.ctx.audit.list({ targetId: 'good' });
    expect(audit.some((a) => a.action === 'authorization.failed')).toBe(true);
  });

  it('a callback without a code fails cleanly', async () => {
    const ua = await signedIn('u3');
    const r = await start('u3', 'good');
    const callback = await ua.signInAtOidcProvider((await r.json()).authorizationUrl, 'carol');
    callback.searchParams.delete('code');
    const done = await ua.get(callback.href);
    expect(new URL(done.headers.get('location')!, svc.url).searchParams.get('outcome')).toBe('failed');
    expect(await (await svc.api('u3', '/api/v1/connections')).json()).toEqual([]);
  });

  it('an expired state is refused with a clear page and is not consumed', async () => {
    const ua = await signedIn('u4');
    const r = await start('u4', 'good');
    const callback = await ua.signInAtOidcProvider((await r.json()).authorizationUrl, 'dave');
    await svc.service.ctx.store.db
      .updateTable('pending_authorizations')
      .set({ expires_at: 1 })
      .where('user_id', '=', 'u4')
      .execute();
    const done = await ua.get(callback.href);
    expect(done.status).toBe(400);
    expect(done.body).toContain('expired');
    const row = await svc.service.ctx.store.db
      .selectFrom('pending_authorizations')
      .select('consumed_at')
      .where('user_id', '=', 'u4')
      .executeTakeFirstOrThrow();
    expect(row.consumed_at).toBeNull();
  });
});
