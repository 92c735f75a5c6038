/**
 * The whole connect journey in a real browser (Chromium) against a real OpenID Connect provider
 * (panva's oidc-provider: PKCE required, refresh tokens rotated, access tokens for the demo API),
 * on SQLite and PostgreSQL: sign in at /dev/login, Connect, the provider's login and consent pages,
 * "Connected as …", Reconnect (same connection id), Disconnect. Then the secrets scan: no token,
 * code or client secret anywhere the service put anything.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDemoApi, startDemoApi } from '../../src/demo/demo-api.js';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
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
  throughOidcProvider,
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

const screenshotPath = '/tmp/nunq-e2e-connected.png';
const integration = 'items';
/** The person's name at the provider, and what the card must say once connected. */
const login = 'alice';
const accountName = 'Alice Example';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe.each(databaseKinds)('a person connects in Chromium against oidc-provider on %s', (kind) => {
  const clientSecret = `e2e-oidc-secret-${randomBytes(16).toString('hex')}`;
  const secrets = new SecretsCollector();
  const network = new NetworkRecord();
  const tapped: TappedResponse[] = [];
  /** Rendered pages, API answers and database snapshots, for the scan. */
  const seen: Haystack[] = [];
  const contexts: BrowserContext[] = [];
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let api: RunningDemoApi;
  let svc: TestService;
  /** The person's user name at the service (typed at /dev/login). */
  const userName = `e2e-${kind}-person`;
  let connectionId = '';

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const apiPort = await freePort();
    const servicePort = await freePort();
    provider = await startOidcProvider({
      clients: [
        {
          client_id: 'nunq-e2e',
          client_secret: clientSecret,
          redirect_uris: [`http://127.0.0.1:${servicePort}/oauth/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      rotateRefreshToken: true,
      resource: { url: `http://127.0.0.1:${apiPort}/`, scopes: ['items:read'] },
      accounts: { [login]: { name: accountName, email: 'alice@example.com' } },
    });
    api = await startDemoApi({
      issuer: provider.issuer,
      audience: `http://127.0.0.1:${apiPort}/`,
      port: apiPort,
    });
    secrets.add('client_secret', clientSecret);
    svc = await startTestService({
      database,
      port: servicePort,
      authMode: 'dev',
      providers: [{ id: 'demo', type: 'oidc', issuer: provider.issuer, clientId: 'nunq-e2e', clientSecret }],
      integrations: [
        {
          id: integration,
          name: 'Items',
          description: 'The demo API’s items.',
          provider: 'demo',
          scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
          api: { baseUrl: api.url },
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
    await api?.close();
    await provider?.close();
    await database?.drop();
  });

  /** A fresh browser context, signed in at /dev/login as the person; on the Integrations page. */
  async function signedIn(): Promise<Page> {
    const { context, page } = await openSession(browser, network);
    contexts.push(context);
    const { loginUrl, loginFacts, loginHtml } = await signInAtDevLogin(page, svc.url, userName);
    seen.push({ where: `page ${loginUrl.pathname}`, text: loginHtml });
    expect(loginUrl.pathname).toBe('/dev/login');
    expect(loginUrl.searchParams.get('return_to')).toBe('/');
    expect(loginFacts).toMatchObject({ lang: 'en', mainLandmarks: 1, unnamedControls: [] });
    expect(loginFacts.formControls).toBeGreaterThanOrEqual(1);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Integrations');
    expect(await page.getByTestId('signed-in-as').textContent()).toBe(userName);
    return page;
  }

  const keep = (page: Page) => keepPage(page, seen);

  /** GETs an API path with the browser context's own session cookie; kept for the scan. */
  async function apiGet(page: Page, path: string): Promise<unknown> {
    const { status, json } = await getJsonWithSession(page, `${svc.url}${path}`, seen);
    expect(status, JSON.stringify(json)).toBe(200);
    return json;
  }

  const throughProvider = (page: Page) => throughOidcProvider(page, provider.issuer, login);

  const card = (page: Page) => page.getByTestId(`integration-${integration}`);
  const statusText = async (page: Page) =>
    (await card(page).getByTestId(`status-${integration}`).textContent())?.trim();

  it('signs in at /dev/login, connects through the provider’s login and consent pages and shows "Connected as …"', async () => {
    const page = await signedIn();
    expect(await statusText(page)).toBe('Not connected');
    await keep(page);

    // Connect on the card is a form post with the CSRF token (an explicit action on our page).
    const post = await submitForm(
      page,
      card(page).getByRole('button', { name: 'Connect', exact: true }),
      svc.url,
    );
    expect(post.status, post.detail).toBe(303);
    await page.waitForURL((url) => url.origin === provider.issuer);
    expect(await throughProvider(page)).toEqual(['login', 'consent']);

    await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
    const back = new URL(page.url());
    expect(back.searchParams.get('outcome')).toBe('connected');
    connectionId = back.searchParams.get('connection') ?? '';
    expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await page.getByTestId('flash').textContent()).toBe('Connected.');
    expect(await page.getByRole('status').textContent()).toContain('Connected.');
    expect(await statusText(page)).toBe(`Connected as ${accountName}`);
    expect(await card(page).getByRole('button', { name: 'Reconnect' }).count()).toBe(1);
    expect(await card(page).getByRole('button', { name: 'Disconnect' }).count()).toBe(1);
    expect(await card(page).getByRole('button', { name: 'Connect', exact: true }).count()).toBe(0);

    const facts = await accessibilityFacts(page);
    expect(facts).toMatchObject({
      lang: 'en',
      mainLandmarks: 1,
      unnamedControls: [],
      flash: 'in-live-region',
    });
    await keep(page);
    if (kind === databaseKinds[0]) await page.screenshot({ path: screenshotPath, fullPage: true });

    // The API, with the same browser session, shows the connection with the provider's account.
    const list = (await apiGet(page, '/api/v1/connections')) as Array<Record<string, unknown>>;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: connectionId,
      integration,
      status: 'active',
      account: { id: login, name: accountName, email: 'alice@example.com' },
    });
    expect(list[0]?.scopes).toContain('items:read');
    expect(await apiGet(page, '/api/v1/integrations')).toContainEqual({
      id: integration,
      name: 'Items',
      kind: 'oauth',
      status: 'active',
      connectionId,
    });

    // The tokens the scan looks for are the ones the service really stored (sealed).
    const row = await svc.service.ctx.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', connectionId)
      .executeTakeFirstOrThrow();
    const stored = svc.service.ctx.sealer.open(row.access_token_sealed!, {
      table: 'connections',
      rowId: connectionId,
      field: 'access_token_sealed',
    });
    expect(secrets.values('access_token')).toContain(stored);
    const dump = await rawDatabaseText(svc.service.ctx.store, database);
    expect(dump).toContain(row.access_token_sealed!);
    seen.push({ where: 'database while connected', text: dump });
  });

  it('Reconnect on the card goes through the provider again and keeps the same connection id', async () => {
    expect(connectionId).not.toBe('');
    const page = await signedIn();
    expect(await statusText(page)).toBe(`Connected as ${accountName}`);
    // A second tab on the Integrations page, to hear the change over server-sent events.
    const watcher = await network.openPage(page.context());
    await Promise.all([
      watcher.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/events'),
      watcher.goto(`${svc.url}/`),
    ]);
    const heardBefore = network.eventSourceMessages.length;

    const post = await submitForm(page, card(page).getByRole('button', { name: 'Reconnect' }), svc.url);
    expect(post.status, post.detail).toBe(303);
    await page.waitForURL((url) => url.origin === provider.issuer);
    // A fresh browser has no session at the provider: sign-in and consent again.
    expect(await throughProvider(page)).toEqual(['login', 'consent']);

    await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
    const back = new URL(page.url());
    expect(back.searchParams.get('outcome')).toBe('reconnected');
    expect(back.searchParams.get('connection')).toBe(connectionId);
    expect(await page.getByTestId('flash').textContent()).toBe('Reconnected.');
    expect(await statusText(page)).toBe(`Connected as ${accountName}`);
    await keep(page);

    const list = (await apiGet(page, '/api/v1/connections')) as Array<Record<string, unknown>>;
    expect(list.map((c) => [c.id, c.status])).toEqual([[connectionId, 'active']]);
    await expect
      .poll(() => network.eventSourceMessages.slice(heardBefore).map((m) => m.event), { timeout: 5000 })
      .toContain('connection.status');
    const heard = network.eventSourceMessages.slice(heardBefore).find((m) => m.event === 'connection.status');
    expect(JSON.parse(heard?.data ?? '{}')).toMatchObject({ connectionId, status: 'active' });
    expect(provider.counters.tokenRequests.authorization_code).toBe(2);
  });

  it('a grant revoked at the provider shows a live "needs reconnecting" banner whose Reconnect restores the same id', async () => {
    expect(connectionId).not.toBe('');
    const page = await signedIn();
    // Reload with the event stream's response awaited, so the page is listening before the change.
    await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/events'),
      page.goto(`${svc.url}/`),
    ]);
    expect(await statusText(page)).toBe(`Connected as ${accountName}`);

    // The provider revokes the grant; the next refresh learns it (invalid_grant).
    await provider.revokeGrants();
    await expect(svc.service.ctx.tokens.getAccessToken(connectionId, { force: true })).rejects.toMatchObject({
      code: 'connection_needs_reauth',
    });
    // The open page hears it over server-sent events and shows the banner without a manual reload.
    const banner = page.getByTestId('notification');
    await banner.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await banner.textContent()).toContain('Items needs reconnecting');
    expect(await statusText(page)).toBe('Needs reconnecting');
    await keep(page);

    const post = await submitForm(page, banner.getByRole('button', { name: 'Reconnect' }), svc.url);
    expect(post.status, post.detail).toBe(303);
    await page.waitForURL((url) => url.origin === provider.issuer);
    expect(await throughProvider(page)).toEqual(['login', 'consent']);
    await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
    const back = new URL(page.url());
    expect(back.searchParams.get('outcome')).toBe('reconnected');
    expect(back.searchParams.get('connection')).toBe(connectionId);
    expect(await statusText(page)).toBe(`Connected as ${accountName}`);
    expect(await page.getByTestId('notification').count()).toBe(0);
    await keep(page);
  });

  it('Disconnect on the card brings it back to "Not connected" and revokes at the provider', async () => {
    expect(connectionId).not.toBe('');
    const page = await signedIn();
    const post = await submitForm(page, card(page).getByRole('button', { name: 'Disconnect' }), svc.url);
    expect(post.status, post.detail).toBe(303);
    await page.waitForURL((url) => url.searchParams.get('outcome') === 'disconnected');
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.getByTestId('flash').textContent()).toBe('Disconnected.');
    expect(await statusText(page)).toBe('Not connected');
    expect(await card(page).getByRole('button', { name: 'Connect', exact: true }).count()).toBe(1);
    expect(await card(page).getByRole('button', { name: 'Disconnect' }).count()).toBe(0);
    expect(await accessibilityFacts(page)).toMatchObject({
      lang: 'en',
      mainLandmarks: 1,
      unnamedControls: [],
      flash: 'in-live-region',
    });
    await keep(page);

    expect(await apiGet(page, '/api/v1/connections')).toEqual([]);
    const audit = await svc.service.ctx.audit.list({ targetId: connectionId });
    const deleted = audit.find((a) => a.action === 'connection.deleted');
    expect(JSON.parse(deleted?.data ?? '{}').revocation).toBe('revoked');
  });

  it('leaves no token, code, verifier or client secret in any response, page, log line or the database', async () => {
    await network.settle();
    const callbacks = network.requests.filter((u) => new URL(u).pathname === '/oauth/callback');
    secrets.addCodesFromUrls(callbacks, svc.url, '/oauth/callback');
    // Not vacuous: the flow really produced what is searched for (one code per callback).
    expect(callbacks.length).toBeGreaterThanOrEqual(1);
    expect(secrets.count('client_secret')).toBe(1);
    expect(secrets.count('authorization_code')).toBe(callbacks.length);
    expect(secrets.tokenResponses).toBeGreaterThanOrEqual(callbacks.length);
    expect(secrets.count('access_token')).toBeGreaterThanOrEqual(callbacks.length);
    expect(secrets.count('refresh_token')).toBeGreaterThanOrEqual(callbacks.length);
    expect(secrets.count('id_token')).toBeGreaterThanOrEqual(callbacks.length);
    expect(secrets.count('code_verifier')).toBe(callbacks.length);

    // The scanner finds what is there: each code is in the provider's own redirect to the callback.
    const providerRedirects = network
      .from(provider.issuer)
      .map((r) => ({ where: r.url, text: headersText(r.headers) }));
    const codes = secrets.list().filter((s) => s.kind === 'authorization_code');
    for (const code of codes) expect(findSecrets([code], providerRedirects)).not.toEqual([]);

    // Every text body the browser got from the service was actually read, pages included.
    const fromService = network.from(svc.url);
    // A body Chromium dropped (the page was navigated away from before it could be read) was
    // still scanned: the tap inside the service kept every body it sent, and it is a haystack.
    const unread = fromService.filter((r) => r.bodyError !== undefined);
    const tappedBody = (r: { url: string; status: number }) =>
      tapped.some((t) => t.path === new URL(r.url).pathname && t.status === r.status && t.body !== undefined);
    expect(unread.filter((r) => !tappedBody(r))).toEqual([]);
    expect(fromService.filter((r) => r.body?.includes('<main')).length).toBeGreaterThanOrEqual(6);
    // The tap inside the service saw the callbacks' redirects, whose bodies Chromium does not keep.
    expect(tapped.filter((r) => r.path === '/oauth/callback' && r.status === 302)).toHaveLength(
      callbacks.length,
    );

    // The service's request log has each callback, with its query values redacted.
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
});
