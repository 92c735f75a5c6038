/**
 * Regression (issue 8, security 1): login CSRF must not turn into account takeover. In real
 * Chromium against oidc-provider that approves silently (the victim has a session there and
 * consented earlier, and the integration forces no consent), on SQLite and PostgreSQL.
 *
 * The attack: a page on another site sends the victim's browser to
 * `/session?token=<the attacker's own JWT>&return_to=/connect/<integration>`. Before the fix this
 * signed the victim in as the attacker, started a flow, the provider approved it without a
 * click, and the victim's provider account landed in the attacker's connection.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import {
  accessibilityFacts,
  type Browser,
  type BrowserContext,
  closeWithin,
  launchBrowser,
  NetworkRecord,
  openSession,
  type Page,
  submitForm,
} from '../support/browser.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const integration = 'items';
/** The victim's account at the provider. */
const victimLogin = 'victor';
const victimUser = 'victim-user';
const attackerUser = 'mallory';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** A page on another site (`localhost`, not `127.0.0.1`) that sends its visitor to `target`. */
async function startAttackerSite(): Promise<{ url: (target: string) => string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('to') ?? '/';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><title>You won</title><script>location.href = ${JSON.stringify(target)};</script>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (target) => `http://localhost:${port}/prize?to=${encodeURIComponent(target)}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(databaseKinds)(
  'login CSRF cannot connect a victim’s account for the attacker on %s',
  (kind) => {
    const network = new NetworkRecord();
    const contexts: BrowserContext[] = [];
    let database: TestDatabase;
    let provider: RunningOidcProvider;
    let svc: TestService;
    let attacker: Awaited<ReturnType<typeof startAttackerSite>>;
    /** Authorization requests the provider received (its own count, not the browser's). */
    let authorizationRequests = 0;

    beforeAll(async () => {
      database = await createTestDatabase(kind);
      const servicePort = await freePort();
      provider = await startOidcProvider({
        clients: [
          {
            client_id: 'nunq-csrf',
            client_secret: 'csrf-test-client-secret-0123456789',
            redirect_uris: [`http://127.0.0.1:${servicePort}/oauth/callback`],
            grant_types: ['authorization_code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        accounts: { [victimLogin]: { name: 'Victor Victim', email: 'victor@example.com' } },
      });
      provider.provider.use(async (ctx, next) => {
        if (ctx.method === 'GET' && ctx.path === '/auth') authorizationRequests += 1;
        await next();
      });
      // No offline_access: oidc-provider then asks for consent only once, and afterwards approves
      // at once for a browser with a session there (SSO plus earlier consent, as Entra does).
      svc = await startTestService({
        database,
        port: servicePort,
        providers: [
          {
            id: 'idp',
            type: 'oidc',
            issuer: provider.issuer,
            clientId: 'nunq-csrf',
            clientSecret: 'csrf-test-client-secret-0123456789',
          },
        ],
        integrations: [{ id: integration, name: 'Items', provider: 'idp', scopes: ['openid', 'profile'] }],
      });
      attacker = await startAttackerSite();
    });

    afterAll(async () => {
      await Promise.all(contexts.splice(0).map((c) => closeWithin(c, 10_000)));
      await svc?.close();
      await provider?.close();
      await attacker?.close();
      await database?.drop();
    });

    const connectionsOf = (userId: string) =>
      svc.service.ctx.store.db.selectFrom('connections').select('id').where('user_id', '=', userId).execute();

    /** The platform's hand-off link for `userId` (a fresh JWT signed with the service's secret). */
    const handOff = async (userId: string, returnTo: string) =>
      `${svc.url}/session?token=${await svc.token(userId)}&return_to=${encodeURIComponent(returnTo)}`;

    /** Who the browser's nunq session belongs to, or the status when there is none. */
    async function sessionUser(page: Page): Promise<string | number> {
      const r = await page.context().request.get(`${svc.url}/api/v1/me`);
      return r.status() === 200 ? ((await r.json()) as { id: string }).id : r.status();
    }

    /**
     * A victim's browser that has a session at the provider and consented there to our client
     * earlier: the victim connected Items once for their own nunq account. `signedOut` then signs
     * out of nunq (the provider session and consent stay).
     */
    async function victimBrowser(signedOut: boolean): Promise<Page> {
      const { context, page } = await openSession(browser, network);
      contexts.push(context);
      await page.goto(await handOff(victimUser, '/'));
      expect(await page.getByTestId('signed-in-as').textContent()).toBe(victimUser);
      const owned = (await connectionsOf(victimUser)).length;
      const button = page.getByTestId(`${owned === 0 ? 'connect' : 'reconnect'}-${integration}`);
      await button.click();
      await page.waitForURL((url) => url.origin === provider.issuer || url.searchParams.has('outcome'));
      // A fresh browser: sign in and consent at the provider, as a person does.
      for (let step = 0; step < 4 && new URL(page.url()).origin !== svc.url; step += 1) {
        await page.waitForLoadState('load');
        const here = page.url();
        if (new URL(here).origin !== provider.issuer) continue;
        if ((await page.locator('input[name="login"]').count()) > 0) {
          await page.locator('input[name="login"]').fill(victimLogin);
          await page.locator('input[name="password"]').fill('secret');
          await page.getByRole('button', { name: 'Sign-in' }).click();
        } else {
          await page.getByRole('button', { name: 'Continue' }).click();
        }
        await page.waitForURL((url) => url.href !== here);
      }
      await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
      expect(new URL(page.url()).searchParams.get('outcome')).toMatch(/^(connected|reconnected)$/);
      expect((await connectionsOf(victimUser)).length).toBe(Math.max(owned, 1));
      if (signedOut) {
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.waitForLoadState('load');
        expect(await sessionUser(page)).toBe(401);
      }
      return page;
    }

    it('the silent approval is real: a Connect from the victim’s browser completes without any click at the provider', async () => {
      const page = await victimBrowser(false);
      const before = authorizationRequests;
      const post = await submitForm(page, page.getByTestId(`reconnect-${integration}`), svc.url);
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
      expect(new URL(page.url()).searchParams.get('outcome')).toBe('reconnected');
      expect(authorizationRequests).toBe(before + 1);
    });

    it('a signed-out victim following the attacker’s link ends on our confirmation page naming the attacker; nothing reaches the provider', async () => {
      const page = await victimBrowser(true);
      const before = authorizationRequests;
      const requestsBefore = network.requests.length;

      await page.goto(attacker.url(await handOff(attackerUser, `/connect/${integration}`)));
      // The first page the browser shows on our origin (redirects are not shown).
      await page.waitForURL((url) => url.origin === svc.url);
      expect(new URL(page.url()).pathname).toBe(`/connect/${integration}`);

      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Connect Items?');
      expect(await page.getByTestId('confirm-user').textContent()).toContain(attackerUser);
      expect(await page.getByTestId('signed-in-as').textContent()).toBe(attackerUser);
      expect(await page.getByTestId('confirm-connect').count()).toBe(1);
      expect(await accessibilityFacts(page)).toMatchObject({
        lang: 'en',
        mainLandmarks: 1,
        unnamedControls: [],
      });
      // The page cannot be framed by the attacker's site to trick a click.
      const shown = network.responses.filter(
        (r) => r.url.startsWith(`${svc.url}/connect/${integration}`) && r.status === 200,
      );
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.at(-1)?.headers['x-frame-options']).toBe('DENY');
      expect(shown.at(-1)?.headers['content-security-policy']).toContain("frame-ancestors 'none'");

      // Give a silent flow every chance to run: none may.
      await page.waitForTimeout(500);
      expect(authorizationRequests).toBe(before);
      expect(network.requests.slice(requestsBefore).filter((u) => u.startsWith(provider.issuer))).toEqual([]);
      expect(await connectionsOf(attackerUser)).toEqual([]);
    });

    it('a victim who is signed in is asked before being switched to the attacker, and stays themselves', async () => {
      const page = await victimBrowser(false);
      const before = authorizationRequests;

      await page.goto(attacker.url(await handOff(attackerUser, `/connect/${integration}`)));
      await page.waitForURL((url) => url.origin === svc.url);
      expect(new URL(page.url()).pathname).toBe('/session');
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Switch account?');
      const text = await page.getByTestId('switch-text').textContent();
      expect(text).toContain(victimUser);
      expect(text).toContain(attackerUser);
      expect(await sessionUser(page)).toBe(victimUser);
      expect(await accessibilityFacts(page)).toMatchObject({
        lang: 'en',
        mainLandmarks: 1,
        unnamedControls: [],
      });

      await page.waitForTimeout(300);
      expect(authorizationRequests).toBe(before);
      expect(await connectionsOf(attackerUser)).toEqual([]);

      // "Stay signed in as …" keeps the victim's session.
      await page.getByTestId('switch-stay').click();
      await page.waitForURL(`${svc.url}/`);
      expect(await sessionUser(page)).toBe(victimUser);
    });

    it('a person who does mean to switch clicks Continue, and still lands on the confirmation page', async () => {
      const page = await victimBrowser(false);
      const before = authorizationRequests;
      await page.goto(await handOff('colleague', `/connect/${integration}`));
      const post = await submitForm(page, page.getByTestId('switch-continue'), svc.url);
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((url) => url.pathname === `/connect/${integration}`);
      expect(await sessionUser(page)).toBe('colleague');
      expect(await page.getByTestId('confirm-user').textContent()).toContain('colleague');
      expect(authorizationRequests).toBe(before);
    });

    const parkedOf = (userId: string) =>
      svc.service.ctx.store.db
        .selectFrom('pending_confirmations')
        .select('id')
        .where('user_id', '=', userId)
        .execute();

    /** The attacker's own flow: started with their bearer (`api`), or in their own browser (`browser`). */
    async function attackerFlow(startedWith: 'api' | 'browser'): Promise<string> {
      if (startedWith === 'browser') {
        const ua = await signedInAgent(svc, attackerUser);
        return (await ua.startConnect(svc.url, integration)).href;
      }
      const r = await svc.api(attackerUser, '/api/v1/connections', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ integration }),
      });
      expect(r.status).toBe(201);
      return ((await r.json()) as { authorizationUrl: string }).authorizationUrl;
    }

    it.each(['api', 'browser'] as const)(
      'two navigations (the hand-off, then the provider URL of the attacker’s flow started in the %s) end on our page naming the attacker; Cancel leaves nothing',
      async (startedWith) => {
        const page = await victimBrowser(true);
        const authorizationUrl = await attackerFlow(startedWith);
        const before = authorizationRequests;

        // First navigation: the hand-off signs the session-less browser in as the attacker.
        await page.goto(attacker.url(await handOff(attackerUser, '/')));
        await page.waitForURL((url) => url.origin === svc.url);
        expect(await sessionUser(page)).toBe(attackerUser);
        // Second navigation: the provider's authorization URL of the attacker's own flow.
        await page.goto(attacker.url(authorizationUrl));
        await page.waitForURL((url) => url.origin === svc.url && url.pathname.startsWith('/oauth/confirm/'));
        // The provider did approve silently and our callback did run...
        expect(authorizationRequests).toBe(before + 1);
        expect(network.requests.some((u) => u.startsWith(`${svc.url}/oauth/callback?`))).toBe(true);
        // ...but nothing was stored: our page names who the connection would belong to.
        expect(await connectionsOf(attackerUser)).toEqual([]);
        expect(await parkedOf(attackerUser)).toHaveLength(1);
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Finish connecting Items?');
        expect(await page.getByTestId('parked-user').textContent()).toContain(attackerUser);
        expect(await page.getByTestId('parked-account').textContent()).toContain('Victor Victim');
        expect(await page.getByTestId('parked-connect').count()).toBe(1);
        expect(await page.content()).not.toMatch(/[?&]code=|access_token|refresh_token/);
        expect(await accessibilityFacts(page)).toMatchObject({
          lang: 'en',
          mainLandmarks: 1,
          unnamedControls: [],
        });
        const shown = network.responses.filter((r) => r.url.startsWith(`${svc.url}/oauth/confirm/`));
        expect(shown.at(-1)?.headers['x-frame-options']).toBe('DENY');

        // Cancel: the parked tokens are gone and nothing was connected, for anyone.
        const post = await submitForm(page, page.getByTestId('parked-cancel'), svc.url);
        expect(post.status, post.detail).toBe(303);
        await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
        expect(new URL(page.url()).searchParams.get('outcome')).toBe('cancelled');
        expect(await connectionsOf(attackerUser)).toEqual([]);
        expect(await parkedOf(attackerUser)).toEqual([]);
      },
    );

    it('a link to /connect (e.g. a reconnectUrl) connects after a click on the confirmation page', async () => {
      const page = await victimBrowser(false);
      await page.goto(`${svc.url}/connect/${integration}?return_to=/`);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Reconnect Items?');
      expect(await page.getByTestId('confirm-user').textContent()).toContain(victimUser);
      const post = await submitForm(page, page.getByTestId('confirm-connect'), svc.url);
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
      expect(new URL(page.url()).searchParams.get('outcome')).toBe('reconnected');
      expect(await connectionsOf(attackerUser)).toEqual([]);
    });
  },
);
