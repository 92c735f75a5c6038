/**
 * The Entra template against the Entra-shaped server: a provider given as `template: entra` with a
 * tenant, client id and secret (and, here only, the authority pointed at the local server), and
 * the template's suggested integrations (SharePoint, OneDrive, Business Central) as an admin would
 * add them: each connects, SharePoint's proxy call reaches (fake) Graph with its token, refreshes
 * rotate; the admin-consent link names the tenant, the client and the redirect URI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entraAdminConsentUrl, getTemplate } from '../../src/oauth/templates/index.js';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientId = 'b3c5e0de-7a51-4c1e-9d8e-e2e0000000aa';
const clientSecret = 'entra~template~secret~0123456789abcdef';

describe('the Entra template against the Entra-shaped server, on sqlite', () => {
  let database: TestDatabase;
  let entra: RunningEntraServer;
  let svc: TestService;
  const template = getTemplate('entra')!;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
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
          id: 'entra',
          template: 'entra',
          tenant: entra.tenantId,
          authority: entra.url,
          clientId,
          clientSecret,
        },
      ],
      // The suggested integrations; Graph's base is the fake Graph's (its paths are /v1.0/...).
      integrations: template.integrations.map((i) => ({
        id: i.id,
        name: i.name,
        provider: 'entra',
        scopes: i.scopes,
        api: { baseUrl: i.api!.baseUrl === 'https://graph.microsoft.com' ? entra.graphUrl : i.api!.baseUrl },
      })),
    });
  });

  afterAll(async () => {
    await svc?.close();
    await entra?.close();
    await database?.drop();
  });

  async function connect(user: string, integration: string) {
    const ua = await signedInAgent(svc, user);
    const callback = await ua.signInAtEntra(await ua.startConnect(svc.url, integration), 'megan.bowen');
    const done = await ua.get(callback.href);
    return new URL(done.location!);
  }

  it.each(['sharepoint', 'onedrive', 'business-central'])(
    '%s connects with the template as configured',
    async (id) => {
      const back = await connect(`u-${id}`, id);
      expect(back.searchParams.get('outcome')).toBe('connected');
      const view = await (
        await svc.api(`u-${id}`, `/api/v1/connections/${back.searchParams.get('connection')}`)
      ).json();
      expect(view).toMatchObject({ status: 'active', account: { name: 'Megan Bowen' } });
    },
  );

  it('proxies SharePoint to Graph with the connection token, and refreshes with rotation', async () => {
    const back = await connect('u-graph', 'sharepoint');
    const id = back.searchParams.get('connection')!;
    const me = await svc.api('u-graph', `/api/v1/connections/${id}/proxy/v1.0/me`);
    expect(me.status).toBe(200);
    const before = { ...entra.counters.tokenRequests };
    const first = await svc.service.ctx.tokens.getAccessToken(id);
    const refreshed = await svc.service.ctx.tokens.getAccessToken(id, { force: true });
    expect(refreshed.value).not.toBe(first.value);
    expect(entra.counters.tokenRequests.refresh_token).toBe((before.refresh_token ?? 0) + 1);
    expect((await svc.api('u-graph', `/api/v1/connections/${id}/proxy/v1.0/me`)).status).toBe(200);
  });

  it('builds the tenant-wide admin consent link', () => {
    const url = entraAdminConsentUrl({
      tenant: entra.tenantId,
      clientId,
      redirectUri: `${svc.url}/admin`,
      scopes: ['https://graph.microsoft.com/Sites.Read.All'],
    });
    expect(url.origin + url.pathname).toBe(
      `https://login.microsoftonline.com/${entra.tenantId}/v2.0/adminconsent`,
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: clientId,
      redirect_uri: `${svc.url}/admin`,
      scope: 'https://graph.microsoft.com/Sites.Read.All',
    });
  });
});
