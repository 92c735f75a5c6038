/**
 * A connection's own API base URL (Salesforce's `instance_url`), on SQLite and PostgreSQL: learnt
 * from the token response at Connect, stored on that connection only, used by the proxy instead
 * of the integration's base (before and after a refresh triggered by the API's 401), and refused
 * — nothing stored — when the token response names a host outside the allowed ones or a URL with
 * credentials or a query.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTemplate } from '../../src/oauth/templates/index.js';
import { type ProviderShapedServer, startProviderShapedServer } from '../peers/provider-shaped-server.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientSecret = 'salesforce-consumer-secret-0123456789';

describe.each(databaseKinds)('per-connection API base URL (Salesforce instance_url) on %s', (kind) => {
  let database: TestDatabase;
  let server: ProviderShapedServer;
  let svc: TestService;
  const instances = new Map<string, { url: string; close(): Promise<void> }>();
  /** What the token response says each login's instance is. */
  const instanceUrlOf: Record<string, () => string> = {};

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const template = getTemplate('salesforce')!;
    const endpoint = (
      k: 'authorizationEndpoint' | 'tokenEndpoint' | 'revocationEndpoint' | 'userinfoEndpoint',
    ) => (template.provider.type === 'oauth2' ? new URL(template.provider[k]!).pathname : '');
    server = await startProviderShapedServer({
      clientId: 'sf-consumer-key',
      clientSecret,
      authorizePath: endpoint('authorizationEndpoint'),
      tokenPath: endpoint('tokenEndpoint'),
      clientAuth: 'post',
      refreshTokens: 'static',
      shape: 'standard',
      userinfoPath: endpoint('userinfoEndpoint'),
      extraFields: (login) => ({
        instance_url: instanceUrlOf[login]!(),
        id: `https://login.salesforce.com/id/00D/${login}`,
      }),
    });
    for (const login of ['alice', 'bob']) {
      const host = await server.extraApiHost();
      instances.set(login, host);
      instanceUrlOf[login] = () => host.url;
    }
    const alice = instances.get('alice')!;
    instanceUrlOf.mallory = () => alice.url.replace('127.0.0.1', 'localhost'); // a host not allowed
    instanceUrlOf.eve = () => `http://user:pw@${new URL(alice.url).host}`; // credentials
    instanceUrlOf.trent = () => `${alice.url}/?next=1`; // a query
    svc = await startTestService({
      database,
      serviceOptions: { background: false },
      providers: [
        {
          id: 'salesforce',
          template: 'salesforce',
          clientId: 'sf-consumer-key',
          clientSecret,
          authorizationEndpoint: `${server.url}${endpoint('authorizationEndpoint')}`,
          tokenEndpoint: `${server.url}${endpoint('tokenEndpoint')}`,
          revocationEndpoint: `${server.url}${endpoint('revocationEndpoint')}`,
          userinfoEndpoint: `${server.url}${endpoint('userinfoEndpoint')}`,
          // The template allows Salesforce's hosts; the local instances are on 127.0.0.1.
          connectionApiBase: { from: 'token_response', field: 'instance_url', hosts: ['127.0.0.1'] },
        },
      ],
      integrations: [
        { id: 'salesforce', name: 'Salesforce', provider: 'salesforce', scopes: template.defaultScopes },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    for (const host of instances.values()) await host.close();
    await server?.close();
    await database?.drop();
  });

  async function connect(user: string, login: string) {
    server.nextLogin = login;
    const ua = await signedInAgent(svc, user);
    const atProvider = await ua.get(await ua.startConnect(svc.url, 'salesforce'));
    const done = await ua.get(atProvider.location!);
    return new URL(done.location!);
  }

  it("sends each connection's calls to its own instance, before and after a refresh", async () => {
    const ids: Record<string, string> = {};
    for (const login of ['alice', 'bob']) {
      const back = await connect(`u-${login}`, login);
      expect(back.searchParams.get('outcome')).toBe('connected');
      ids[login] = back.searchParams.get('connection')!;
      const row = await svc.service.ctx.store.db
        .selectFrom('connections')
        .select(['api_base_url', 'access_token_expires_at'])
        .where('id', '=', ids[login])
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ api_base_url: instances.get(login)!.url, access_token_expires_at: null });
    }
    const call = (login: string) =>
      svc.api(`u-${login}`, `/api/v1/connections/${ids[login]}/proxy/services/data/v62.0/sobjects?x=1`);
    for (const login of ['alice', 'bob']) {
      expect((await call(login)).status).toBe(200);
      expect(server.apiCalls.at(-1)).toMatchObject({
        host: `extra:${new URL(instances.get(login)!.url).port}`,
        login,
        url: '/services/data/v62.0/sobjects?x=1',
      });
    }
    // No expires_in: the session ends when the API says so; the proxy refreshes and retries there.
    const refreshes = server.tokenRequests.filter((r) => r.grant === 'refresh_token').length;
    server.expireAccessTokens();
    expect((await call('bob')).status).toBe(200);
    expect(server.tokenRequests.filter((r) => r.grant === 'refresh_token').length).toBe(refreshes + 1);
    expect(server.apiCalls.slice(-2).map((c) => [c.host, c.status])).toEqual([
      [`extra:${new URL(instances.get('bob')!.url).port}`, 401],
      [`extra:${new URL(instances.get('bob')!.url).port}`, 200],
    ]);
    expect(server.apiCalls.some((c) => c.host === 'provider')).toBe(false);
  });

  it('a Reconnect learns the instance again (an org moved to another host)', async () => {
    const user = 'u-moving';
    const first = await connect(user, 'alice');
    const id = first.searchParams.get('connection')!;
    const bob = instances.get('bob')!;
    const before = instanceUrlOf.alice!;
    instanceUrlOf.alice = () => bob.url;
    try {
      server.nextLogin = 'alice';
      const ua = await signedInAgent(svc, user);
      const atProvider = await ua.get(await ua.startReconnect(svc.url, id));
      const back = new URL((await ua.get(atProvider.location!)).location!);
      expect(back.searchParams.get('outcome')).toBe('reconnected');
      expect(back.searchParams.get('connection')).toBe(id);
    } finally {
      instanceUrlOf.alice = before;
    }
    expect((await svc.api(user, `/api/v1/connections/${id}/proxy/services/data`)).status).toBe(200);
    expect(server.apiCalls.at(-1)).toMatchObject({ host: `extra:${new URL(bob.url).port}`, login: 'alice' });
  });

  it.each([
    ['mallory', 'a host outside the allowed ones'],
    ['eve', 'a URL with credentials'],
    ['trent', 'a URL with a query'],
  ])('refuses the Connect when instance_url is %s (%s): nothing stored', async (login) => {
    const back = await connect(`u-${login}`, login);
    expect(back.searchParams.get('outcome')).toBe('failed');
    const list = await (await svc.api(`u-${login}`, '/api/v1/connections')).json();
    expect(list).toEqual([]);
  });
});
