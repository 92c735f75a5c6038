/**
 * Regression (issue 8, reliability 5): a user of another organisation signing in to a
 * single-tenant Entra integration was refused with the generic "please try again" and an audit
 * reason `transient`. It is its own, non-transient reason (`wrong_tenant`), and the page says
 * which organisation's accounts the integration accepts (from the provider's configuration).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientId = '11111111-2222-3333-4444-555555555555';
const clientSecret = 'entra-test-client-secret-value';
const foreignTenant = '99999999-9999-4999-8999-999999999999';

describe.each(databaseKinds)(
  'a single-tenant Entra integration and a user of another tenant, on %s',
  (kind) => {
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
          {
            id: 'entra-single',
            type: 'entra',
            tenant: entra.tenantId,
            authority: entra.url,
            clientId,
            clientSecret,
            authorizationParams: { domain_hint: 'contoso.example' },
          },
        ],
        integrations: [
          {
            id: 'bc',
            name: 'Business Central',
            provider: 'entra-single',
            scopes: ['https://api.businesscentral.dynamics.com/user_impersonation'],
          },
        ],
      });
    });

    afterAll(async () => {
      await svc?.close();
      await entra?.close();
      await database?.drop();
    });

    /** Starts a flow in the browser (its Connect button), signs in at Entra, delivers the callback. */
    async function connectAs(userId: string, login: string) {
      const ua = await signedInAgent(svc, userId);
      const authorizationUrl = await ua.startConnect(svc.url, 'bc');
      const callback = await ua.signInAtEntra(authorizationUrl, login);
      const done = await ua.get(callback.href);
      expect(done.status).toBe(302);
      return { ua, back: new URL(done.headers.get('location')!, svc.url) };
    }

    const failures = async (userId: string) =>
      (
        await svc.service.ctx.store.db
          .selectFrom('audit_log')
          .select('data')
          .where('action', '=', 'authorization.failed')
          .where('actor', '=', userId)
          .execute()
      ).map((r) => JSON.parse(r.data) as { reason?: string });

    it('refuses it as wrong_tenant (not transient), and the page names the organisation it accepts', async () => {
      // What Entra issues to a user of another directory: its tid, and the issuer of that tenant.
      entra.tamperNextIdToken({ tid: foreignTenant, iss: `${entra.url}/${foreignTenant}/v2.0` });
      const userId = 'u-fabrikam';
      const { ua, back } = await connectAs(userId, 'x@fabrikam.example');
      expect(back.searchParams.get('outcome')).toBe('failed');
      expect(back.searchParams.get('reason')).toBe('wrong_tenant');
      expect(back.searchParams.get('integration')).toBe('bc');
      expect(await failures(userId)).toEqual([{ reason: 'wrong_tenant' }]);
      expect(await (await svc.api(userId, '/api/v1/connections')).json()).toEqual([]);

      const page = await ua.get(back.href);
      expect(page.status).toBe(200);
      const flash = /data-testid="flash">([^<]*)</.exec(page.body)?.[1];
      expect(flash).toBe(
        `Business Central accepts only accounts of the organisation contoso.example (tenant id ${entra.tenantId}). You signed in with an account of another organisation, so nothing was connected. Sign in with an account of that organisation to connect.`,
      );
      expect(page.body).not.toContain('please try again');
    });

    it('a user of the configured tenant still connects', async () => {
      const { back } = await connectAs('u-contoso', 'adele@contoso.example');
      expect(back.searchParams.get('outcome')).toBe('connected');
      expect(back.searchParams.has('reason')).toBe(false);
    });

    it('an ID token whose issuer does not match its tid is still a generic failure, not wrong_tenant', async () => {
      entra.tamperNextIdToken({ tid: foreignTenant });
      const userId = 'u-forged';
      const { back } = await connectAs(userId, 'y@contoso.example');
      expect(back.searchParams.get('outcome')).toBe('failed');
      expect(back.searchParams.has('reason')).toBe(false);
      expect((await failures(userId)).map((f) => f.reason)).not.toContain('wrong_tenant');
    });
  },
);

describe('a single-tenant Entra integration configured by domain name, and a user of another tenant', () => {
  let database: TestDatabase;
  let entra: RunningEntraServer;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const port = await freePort();
    entra = await startEntraServer({
      tenantDomain: 'contoso.example',
      clients: [{ clientId, clientSecret, redirectUris: [`http://127.0.0.1:${port}/oauth/callback`] }],
    });
    svc = await startTestService({
      database,
      port,
      serviceOptions: { background: false },
      providers: [
        {
          id: 'entra-domain',
          type: 'entra',
          tenant: 'contoso.example',
          authority: entra.url,
          clientId,
          clientSecret,
        },
      ],
      integrations: [
        {
          id: 'bc',
          name: 'Business Central',
          provider: 'entra-domain',
          scopes: ['https://api.businesscentral.dynamics.com/user_impersonation'],
        },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await entra?.close();
    await database?.drop();
  });

  async function connectAs(userId: string, login: string) {
    const ua = await signedInAgent(svc, userId);
    const callback = await ua.signInAtEntra(await ua.startConnect(svc.url, 'bc'), login);
    const done = await ua.get(callback.href);
    return { ua, back: new URL(done.headers.get('location')!, svc.url) };
  }

  it("learns the tenant id from the domain's discovery document and refuses another tenant as wrong_tenant", async () => {
    entra.tamperNextIdToken({ tid: foreignTenant, iss: `${entra.url}/${foreignTenant}/v2.0` });
    const { ua, back } = await connectAs('u-other', 'x@fabrikam.example');
    expect(back.searchParams.get('outcome')).toBe('failed');
    expect(back.searchParams.get('reason')).toBe('wrong_tenant');
    const flash = /data-testid="flash">([^<]*)</.exec((await ua.get(back.href)).body)?.[1];
    expect(flash).toContain('Business Central accepts only accounts of the organisation contoso.example.');
    expect(await (await svc.api('u-other', '/api/v1/connections')).json()).toEqual([]);
  });

  it('a user of that tenant connects', async () => {
    const { back } = await connectAs('u-own', 'adele@contoso.example');
    expect(back.searchParams.get('outcome')).toBe('connected');
  });
});
