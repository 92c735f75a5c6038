/**
 * Embedding in real Chromium with a real oidc-provider: a host-platform page on another
 * 127.0.0.1 port, listed in `server.embedOrigins`, loads `nunq-connect/client` (the very source,
 * transpiled), calls `connect()` from a click, and gets the outcome from the popup after the
 * confirmation page and the provider's pages. A page on an unlisted origin receives nothing
 * (its `connect()` rejects when the popup closes), and its cross-origin API calls get no CORS.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import {
  type Browser,
  type BrowserContext,
  closeWithin,
  launchBrowser,
  NetworkRecord,
  openSession,
  type Page,
  signInAtDevLogin,
  throughOidcProvider,
} from '../support/browser.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';

const clientDir = join(import.meta.dirname, '../../src/client');

/** The client's modules as a browser loads them: `/client/<name>.js`. */
function clientModules(): Map<string, string> {
  const modules = new Map<string, string>();
  for (const file of readdirSync(clientDir).filter((f) => f.endsWith('.ts'))) {
    const js = ts.transpileModule(readFileSync(join(clientDir, file), 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    }).outputText;
    modules.set(`/client/${file.replace(/\.ts$/, '.js')}`, js);
  }
  return modules;
}

/** The host platform's page: a Connect button calling `connect()`, and a record of every message. */
function hostPage(serviceUrl: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host platform</title></head><body>
<button id="connect">Connect Items</button>
<script type="module">
import { createClient } from '/client/index.js';
window.messages = [];
window.addEventListener('message', (e) => window.messages.push({ origin: e.origin, data: e.data }));
const nunq = createClient({ baseUrl: ${JSON.stringify(serviceUrl)} });
window.nunq = nunq;
document.getElementById('connect').addEventListener('click', () => {
  window.result = nunq.connect('items', window.connectOptions ?? {}).then(
    (outcome) => ({ outcome }),
    (error) => ({ error: { name: error.name, reason: error.reason } }),
  );
});
window.ready = true;
</script></body></html>`;
}

async function startHost(serviceUrl: string): Promise<{ server: Server; url: string }> {
  const modules = clientModules();
  const port = await freePort();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const module = modules.get(path);
    if (module !== undefined) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(module);
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(hostPage(serviceUrl));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe.each(databaseKinds)('Connect in a popup from the host platform on %s', (kind) => {
  const clientSecret = `popup-secret-${randomBytes(12).toString('hex')}`;
  const network = new NetworkRecord();
  const contexts: BrowserContext[] = [];
  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let svc: TestService;
  let listed: { server: Server; url: string };
  let unlisted: { server: Server; url: string };

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const servicePort = await freePort();
    const serviceUrl = `http://127.0.0.1:${servicePort}`;
    listed = await startHost(serviceUrl);
    unlisted = await startHost(serviceUrl);
    provider = await startOidcProvider({
      clients: [
        {
          client_id: 'nunq-popup',
          client_secret: clientSecret,
          redirect_uris: [`${serviceUrl}/oauth/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      accounts: { alice: { name: 'Alice Example', email: 'alice@example.com' } },
    });
    svc = await startTestService({
      database,
      port: servicePort,
      authMode: 'dev',
      server: { embedOrigins: [listed.url] },
      providers: [
        { id: 'demo', type: 'oidc', issuer: provider.issuer, clientId: 'nunq-popup', clientSecret },
      ],
      integrations: [
        {
          id: 'items',
          name: 'Items',
          provider: 'demo',
          scopes: ['openid', 'profile', 'email', 'offline_access'],
        },
      ],
      serviceOptions: { background: false },
    });
  });
  afterAll(async () => {
    await Promise.all(contexts.splice(0).map((c) => closeWithin(c, 10_000)));
    await svc?.close();
    await provider?.close().catch(() => {});
    for (const host of [listed, unlisted]) await new Promise((r) => host?.server.close(r));
    await database?.drop();
  });

  /** A browser signed in at the service as `user` (unless undefined), showing the host page at `hostUrl`. */
  async function hostIn(hostUrl: string, user: string | undefined): Promise<Page> {
    const { context, page } = await openSession(browser, network);
    contexts.push(context);
    if (user !== undefined) await signInAtDevLogin(page, svc.url, user);
    await page.goto(hostUrl);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    return page;
  }

  /** Clicks Connect on the host page; goes through the confirmation and the provider in the popup. */
  async function connectInPopup(page: Page): Promise<Page> {
    const opened = page.context().waitForEvent('page');
    await page.getByRole('button', { name: 'Connect Items' }).click();
    const popup = await opened;
    await popup.waitForLoadState('load');
    expect(new URL(popup.url()).pathname).toBe('/connect/items');
    await popup.getByTestId('confirm-connect').click();
    // The popup closes itself at the end, possibly while the helper still waits on it.
    await throughOidcProvider(popup, provider.issuer, 'alice').catch((error: unknown) => {
      if (!popup.isClosed()) throw error;
    });
    return popup;
  }

  const resultOf = (page: Page) =>
    page.evaluate(() => (window as unknown as { result: Promise<unknown> }).result) as Promise<{
      outcome?: Record<string, unknown>;
      error?: { name: string; reason: string };
    }>;

  it('a listed origin gets {type, outcome, integration, connectionId} and the popup closes', async () => {
    const page = await hostIn(listed.url, `popup-${kind}-listed`);
    const popup = await connectInPopup(page);
    const result = await resultOf(page);
    expect(result.error).toBeUndefined();
    expect(result.outcome).toEqual({
      type: 'nunq-connect',
      outcome: 'connected',
      integration: 'items',
      connectionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    await expect.poll(() => popup.isClosed()).toBe(true);
    // The outcome is real: the connection exists for this user.
    const connections = await page.context().request.get(`${svc.url}/api/v1/connections`);
    expect((await connections.json()) as unknown[]).toEqual([
      expect.objectContaining({ id: result.outcome?.connectionId, integration: 'items', status: 'active' }),
    ]);
    // Only from the service's origin, and only this one message.
    const messages = await page.evaluate(() => (window as unknown as { messages: unknown[] }).messages);
    expect(messages).toEqual([{ origin: svc.url, data: result.outcome }]);
    // The done page's script ran under a CSP that allows it by hash only.
    const done = network.responses.find((r) => new URL(r.url).pathname === '/embed/done');
    expect(done?.headers['content-security-policy']).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    expect(done?.headers['content-security-policy']).not.toMatch(/unsafe-inline|script-src[^;]*'self'/);
  });

  it('a browser without a session connects through the platform’s hand-off token', async () => {
    const page = await hostIn(listed.url, undefined);
    const handOffToken = await svc.token(`popup-${kind}-handoff`);
    await page.evaluate((token) => {
      (window as unknown as { connectOptions: unknown }).connectOptions = { handOffToken: token };
    }, handOffToken);
    await connectInPopup(page);
    const result = await resultOf(page);
    expect(result.outcome).toMatchObject({ outcome: 'connected', integration: 'items' });
    const connections = await page.context().request.get(`${svc.url}/api/v1/connections`);
    expect(await connections.json()).toEqual([expect.objectContaining({ id: result.outcome?.connectionId })]);
    const me = await page.context().request.get(`${svc.url}/api/v1/me`);
    expect(await me.json()).toMatchObject({ id: `popup-${kind}-handoff` });
  });

  it('Cancel in the popup resolves with outcome cancelled and starts nothing', async () => {
    const page = await hostIn(listed.url, `popup-${kind}-cancel`);
    const opened = page.context().waitForEvent('page');
    await page.getByRole('button', { name: 'Connect Items' }).click();
    const popup = await opened;
    await popup.waitForLoadState('load');
    await popup.getByTestId('confirm-cancel').click();
    expect(await resultOf(page)).toEqual({
      outcome: { type: 'nunq-connect', outcome: 'cancelled', integration: 'items' },
    });
    const connections = await page.context().request.get(`${svc.url}/api/v1/connections`);
    expect(await connections.json()).toEqual([]);
  });

  it('an unlisted origin receives nothing: its connect() rejects when the popup closes', async () => {
    const page = await hostIn(unlisted.url, `popup-${kind}-unlisted`);
    await connectInPopup(page);
    const result = await resultOf(page);
    expect(result).toEqual({ error: { name: 'PopupError', reason: 'closed' } });
    expect(await page.evaluate(() => (window as unknown as { messages: unknown[] }).messages)).toEqual([]);
  });

  it('the API answers CORS for the listed origin only, with a bearer and never with cookies', async () => {
    const token = await svc.token('cors-user');
    const call = (page: Page) =>
      page.evaluate(
        async ([url, bearer]) => {
          try {
            const r = await fetch(`${url}/api/v1/integrations`, {
              headers: { authorization: `Bearer ${bearer}` },
            });
            return { status: r.status, body: await r.json() };
          } catch (error) {
            return { failed: String(error) };
          }
        },
        [svc.url, token] as const,
      );
    const fromListed = await call(await hostIn(listed.url, `cors-${kind}-a`));
    expect(fromListed).toEqual({ status: 200, body: [expect.objectContaining({ id: 'items' })] });
    // The session cookie never acts cross-origin: with credentials, even a listed origin is refused.
    const withCookie = await (await hostIn(listed.url, `cors-${kind}-c`)).evaluate(async (url) => {
      try {
        const r = await fetch(`${url}/api/v1/me`, { credentials: 'include' });
        return { status: r.status };
      } catch (error) {
        return { failed: String(error) };
      }
    }, svc.url);
    expect(withCookie).toEqual({ failed: expect.stringMatching(/Failed to fetch/) });
    const fromUnlisted = await call(await hostIn(unlisted.url, `cors-${kind}-b`));
    expect(fromUnlisted).toEqual({ failed: expect.stringMatching(/Failed to fetch/) });
  });
});
