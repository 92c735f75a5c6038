/**
 * The connect journey in a real browser (Chromium) against the Entra-shaped server (tenant-shaped
 * endpoints under an authority, `{tenantid}` issuers, no RFC 9207 `iss`, no revocation, refresh
 * tokens rotated), on SQLite and PostgreSQL: sign in at /dev/login, Connect SharePoint, the sign-in
 * page, "Connected as …" with the account `<oid>@<tid>` from the ID token, Reconnect (same
 * connection id), Disconnect. Then the secrets scan.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import {
  accessibilityFacts,
  type Browser,
  type BrowserContext,
  closeWithin,
  getJsonWithSession,
  keepPage,
  launchBrowser,
  NetworkRecord,
  openSession,
  type Page,
  signInAtDevLogin,
  submitForm,
} from '../support/browser.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import {
  findSecrets,
  type Haystack,
  headersText,
  rawDatabaseText,
  SecretsCollector,
  serviceHaystacks,
  type TappedResponse,
  tapServiceResponses,
} from '../support/secrets-scan.js';
import { freePort, startTestService, type TestService } from '../support/service.js';

const integration = 'sharepoint';
const clientId = 'b3c5e0de-7a51-4c1e-9d8e-e2e000000001';
/** What the person types at the Entra sign-in page (an email field), and the name Entra knows. */
const upn = 'adele.vance@contoso.onmicrosoft.com';
const displayName = 'Adele Vance';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe.each(databaseKinds)(
  'a person connects in Chromium against the Entra-shaped server on %s',
  (kind) => {
    const clientSecret = `e2e~entra~${randomBytes(18).toString('base64url')}`;
    const secrets = new SecretsCollector();
    const network = new NetworkRecord();
    const tapped: TappedResponse[] = [];
    const seen: Haystack[] = [];
    const contexts: BrowserContext[] = [];
    let database: TestDatabase;
    let entra: RunningEntraServer;
    let svc: TestService;
    const userName = `e2e-${kind}-entra-person`;
    let connectionId = '';

    beforeAll(async () => {
      database = await createTestDatabase(kind);
      const servicePort = await freePort();
      entra = await startEntraServer({
        clients: [
          {
            clientId,
            clientSecret,
            redirectUris: [`http://127.0.0.1:${servicePort}/oauth/callback`],
          },
        ],
      });
      secrets.add('client_secret', clientSecret);
      svc = await startTestService({
        database,
        port: servicePort,
        authMode: 'dev',
        providers: [
          {
            id: 'entra',
            type: 'entra',
            tenant: 'organizations',
            // The adapter builds `${authority}/${tenant}/oauth2/v2.0/authorize`: the server's base URL.
            authority: entra.url,
            clientId,
            clientSecret,
          },
        ],
        integrations: [
          {
            id: integration,
            name: 'SharePoint',
            provider: 'entra',
            scopes: ['https://graph.microsoft.com/Sites.Read.All'],
            api: { baseUrl: entra.graphUrl },
          },
        ],
        serviceOptions: {
          fetch: secrets.recordingFetch(createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 })),
          routes: [tapServiceResponses(tapped)],
        },
      });
    });

    afterAll(async () => {
      // Contexts stay open until here (a tab may still be reloading on a server-sent event);
      // closing them ends their event streams before the service stops.
      await Promise.all(contexts.splice(0).map((c) => closeWithin(c, 10_000)));
      await svc?.close();
      await entra?.close();
      await database?.drop();
    });

    /** A fresh browser context, signed in at /dev/login as the person; on the Integrations page. */
    async function signedIn(): Promise<Page> {
      const { context, page } = await openSession(browser, network);
      contexts.push(context);
      const { loginUrl, loginFacts, loginHtml } = await signInAtDevLogin(page, svc.url, userName);
      seen.push({ where: `page ${loginUrl.pathname}`, text: loginHtml });
      expect(loginUrl.pathname).toBe('/dev/login');
      expect(loginFacts).toMatchObject({ lang: 'en', mainLandmarks: 1, unnamedControls: [] });
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Integrations');
      return page;
    }

    const keep = (page: Page) => keepPage(page, seen);

    async function apiGet(page: Page, path: string): Promise<unknown> {
      const { status, json } = await getJsonWithSession(page, `${svc.url}${path}`, seen);
      expect(status, JSON.stringify(json)).toBe(200);
      return json;
    }

    /** Types the person's email on the Entra sign-in page and submits; resolves back at the service. */
    async function signInAtEntra(page: Page): Promise<void> {
      await page.waitForURL((url) => url.origin === entra.url);
      const here = new URL(page.url());
      expect(here.pathname).toBe('/organizations/oauth2/v2.0/authorize');
      expect(here.searchParams.get('scope')?.split(' ').sort()).toEqual(
        ['https://graph.microsoft.com/Sites.Read.All', 'offline_access', 'openid', 'profile'].sort(),
      );
      expect(here.searchParams.get('code_challenge_method')).toBe('S256');
      expect(here.searchParams.has('resource')).toBe(false);
      await page.locator('input[name="login"]').fill(upn);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
    }

    const card = (page: Page) => page.getByTestId(`integration-${integration}`);
    const statusText = async (page: Page) =>
      (await card(page).getByTestId(`status-${integration}`).textContent())?.trim();

    it('connects SharePoint through the Entra sign-in page; the account is <oid>@<tid> from the ID token', async () => {
      const page = await signedIn();
      expect(await statusText(page)).toBe('Not connected');
      // Connect on the card is a form post with the CSRF token (an explicit action on our page).
      const post = await submitForm(
        page,
        card(page).getByRole('button', { name: 'Connect', exact: true }),
        svc.url,
      );
      expect(post.status, post.detail).toBe(303);
      await signInAtEntra(page);

      const back = new URL(page.url());
      expect(back.searchParams.get('outcome')).toBe('connected');
      connectionId = back.searchParams.get('connection') ?? '';
      expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(await page.getByTestId('flash').textContent()).toBe('Connected.');
      expect(await statusText(page)).toBe(`Connected as ${displayName}`);
      expect(await accessibilityFacts(page)).toMatchObject({
        lang: 'en',
        mainLandmarks: 1,
        unnamedControls: [],
        flash: 'in-live-region',
      });
      await keep(page);

      // The account comes from the ID token the provider really issued: oid@tid, never the email.
      const idTokens = secrets.values('id_token');
      expect(idTokens).toHaveLength(1);
      const claims = decodeJwt(idTokens[0]!);
      expect(claims.tid).toBe(entra.tenantId);
      expect(typeof claims.oid).toBe('string');
      const list = (await apiGet(page, '/api/v1/connections')) as Array<Record<string, unknown>>;
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        id: connectionId,
        integration,
        status: 'active',
        account: { id: `${claims.oid}@${entra.tenantId}`, name: displayName, email: upn },
      });
      expect(list[0]?.scopes).toContain('https://graph.microsoft.com/Sites.Read.All');
      expect(entra.counters.tokenRequests.authorization_code).toBe(1);

      const row = await svc.service.ctx.store.db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', connectionId)
        .executeTakeFirstOrThrow();
      const stored = svc.service.ctx.sealer.open(row.refresh_token_sealed!, {
        table: 'connections',
        rowId: connectionId,
        field: 'refresh_token_sealed',
      });
      expect(secrets.values('refresh_token')).toContain(stored);
      const dump = await rawDatabaseText(svc.service.ctx.store, database);
      expect(dump).toContain(row.refresh_token_sealed!);
      seen.push({ where: 'database while connected', text: dump });
    });

    it('Reconnect goes through Entra again and keeps the same connection id', async () => {
      expect(connectionId).not.toBe('');
      const page = await signedIn();
      expect(await statusText(page)).toBe(`Connected as ${displayName}`);
      // A second tab on the Integrations page, to hear the change over server-sent events.
      const watcher = await network.openPage(page.context());
      await Promise.all([
        watcher.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/events'),
        watcher.goto(`${svc.url}/`),
      ]);
      const heardBefore = network.eventSourceMessages.length;
      const post = await submitForm(page, card(page).getByRole('button', { name: 'Reconnect' }), svc.url);
      expect(post.status, post.detail).toBe(303);
      await signInAtEntra(page);

      const back = new URL(page.url());
      expect(back.searchParams.get('outcome')).toBe('reconnected');
      expect(back.searchParams.get('connection')).toBe(connectionId);
      expect(await page.getByTestId('flash').textContent()).toBe('Reconnected.');
      expect(await statusText(page)).toBe(`Connected as ${displayName}`);
      await keep(page);
      const list = (await apiGet(page, '/api/v1/connections')) as Array<Record<string, unknown>>;
      expect(list.map((c) => [c.id, c.status])).toEqual([[connectionId, 'active']]);
      await expect
        .poll(() => network.eventSourceMessages.slice(heardBefore).map((m) => m.event), { timeout: 5000 })
        .toContain('connection.status');
      const heard = network.eventSourceMessages
        .slice(heardBefore)
        .find((m) => m.event === 'connection.status');
      expect(JSON.parse(heard?.data ?? '{}')).toMatchObject({ connectionId, status: 'active' });
      expect(entra.counters.signIns).toBe(2);
    });

    it('Disconnect brings the card back to "Not connected" (Entra has no revocation endpoint)', async () => {
      expect(connectionId).not.toBe('');
      const page = await signedIn();
      const post = await submitForm(page, card(page).getByRole('button', { name: 'Disconnect' }), svc.url);
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((url) => url.searchParams.get('outcome') === 'disconnected');
      expect(await page.getByTestId('flash').textContent()).toBe('Disconnected.');
      expect(await statusText(page)).toBe('Not connected');
      expect(await card(page).getByRole('button', { name: 'Connect', exact: true }).count()).toBe(1);
      await keep(page);
      expect(await apiGet(page, '/api/v1/connections')).toEqual([]);
      const audit = await svc.service.ctx.audit.list({ targetId: connectionId });
      const deleted = audit.find((a) => a.action === 'connection.deleted');
      expect(JSON.parse(deleted?.data ?? '{}').revocation).toBe('unsupported');
    });

    it('leaves no token, code, verifier or client secret in any response, page, log line or the database', async () => {
      await network.settle();
      const callbacks = network.requests.filter((u) => new URL(u).pathname === '/oauth/callback');
      secrets.addCodesFromUrls(callbacks, svc.url, '/oauth/callback');
      expect(callbacks.length).toBeGreaterThanOrEqual(1);
      expect(secrets.count('client_secret')).toBe(1);
      expect(secrets.count('authorization_code')).toBe(callbacks.length);
      expect(secrets.count('access_token')).toBeGreaterThanOrEqual(callbacks.length);
      expect(secrets.count('refresh_token')).toBeGreaterThanOrEqual(callbacks.length);
      expect(secrets.count('id_token')).toBeGreaterThanOrEqual(callbacks.length);
      expect(secrets.count('code_verifier')).toBe(callbacks.length);

      // The scanner finds what is there: each code is in Entra's own redirect to the callback.
      const entraRedirects = network
        .from(entra.url)
        .map((r) => ({ where: r.url, text: headersText(r.headers) }));
      const codes = secrets.list().filter((s) => s.kind === 'authorization_code');
      for (const code of codes) expect(findSecrets([code], entraRedirects)).not.toEqual([]);

      const fromService = network.from(svc.url);
      // A body Chromium dropped (the page was navigated away from before it could be read) was
      // still scanned: the tap inside the service kept every body it sent, and it is a haystack.
      const unread = fromService.filter((r) => r.bodyError !== undefined);
      const tappedBody = (r: { url: string; status: number }) =>
        tapped.some(
          (t) => t.path === new URL(r.url).pathname && t.status === r.status && t.body !== undefined,
        );
      expect(unread.filter((r) => !tappedBody(r))).toEqual([]);
      expect(tapped.filter((r) => r.path === '/oauth/callback' && r.status === 302)).toHaveLength(
        callbacks.length,
      );
      const callbackLogs = svc.logs
        .map((l) => JSON.parse(l) as { msg?: string; req?: { url?: string } })
        .filter((l) => l.req?.url?.startsWith('/oauth/callback?'));
      expect(callbackLogs.filter((l) => l.msg === 'request completed')).toHaveLength(callbacks.length);
      for (const l of callbackLogs) expect(l.req?.url).toContain('code=[redacted]');

      const haystacks = await serviceHaystacks({
        serviceUrl: svc.url,
        callbackPath: '/oauth/callback',
        network,
        tapped,
        logs: svc.logs,
        extra: seen,
        store: svc.service.ctx.store,
        database,
      });
      expect(findSecrets(secrets.list(), haystacks)).toEqual([]);
    });
  },
);
