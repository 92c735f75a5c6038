/**
 * The administrator's journey in a real browser (Chromium), issue 10's "done means", on SQLite
 * and PostgreSQL, with two service instances on one database (A and B, as behind a load
 * balancer):
 * - on A, an admin adds Microsoft Entra ID from its template (pointed at the local Entra-shaped
 *   server through the national-cloud authority field) with SharePoint, and adds an MCP server by
 *   pasting its URL, after the preview shows what discovery found;
 * - on B, a person sees both on `/` and connects both, and an agent calls the MCP server's tool
 *   through `/mcp/:id`;
 * - on A, the admin sees both connections healthy in the overview;
 * - on A, the admin disables both; on B, within 2 s, the proxy and both gateway endpoints refuse;
 * - `/metrics` counters moved; no secret ever appears in an admin (or any) response or page.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/keyring.js';
import { type RunningMcpServer, startMcpServer } from '../../src/demo/mcp-server.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import {
  type Browser,
  type BrowserContext,
  closeWithin,
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
  SecretsCollector,
  serviceHaystacks,
  type TappedResponse,
  tapServiceResponses,
} from '../support/secrets-scan.js';
import { freePort, startTestService, type TestService } from '../support/service.js';

const clientId = 'a1d4e2e0-7a51-4c1e-9d8e-e2e00000ad01';
const upn = 'megan.bowen@contoso.onmicrosoft.com';
const adminName = 'e2e-admin';
/** The bound: a change on one instance is in force on every other within 2 s. */
const boundMs = 2_000;

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** The value of every sample of `name` (with each of `labels`) in a Prometheus text exposition, summed. */
function metricSum(text: string, name: string, labels: string[] = []): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labels.some((l) => !rest.includes(l))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe.each(databaseKinds)(
  'an administrator runs the catalog from the console in Chromium, on %s',
  (kind) => {
    const clientSecret = `e2e~admin~${randomBytes(18).toString('base64url')}`;
    const secrets = new SecretsCollector();
    const network = new NetworkRecord();
    const tapped: TappedResponse[] = [];
    const seen: Haystack[] = [];
    const contexts: BrowserContext[] = [];
    const clients: Client[] = [];
    let database: TestDatabase;
    let entra: RunningEntraServer;
    let tracker: RunningMcpServer;
    let a: TestService;
    let b: TestService;
    let admin: Page;
    let person: Page;
    const userName = `e2e-${kind}-console-user`;
    const ids = { sharepoint: '', tracker: '' };
    let metricsBefore = '';

    beforeAll(async () => {
      database = await createTestDatabase(kind);
      const [portA, portB] = [await freePort(), await freePort()];
      entra = await startEntraServer({
        clients: [
          {
            clientId,
            clientSecret,
            redirectUris: [portA, portB].map((p) => `http://127.0.0.1:${p}/oauth/callback`),
          },
        ],
      });
      secrets.add('client_secret', clientSecret);
      tracker = await startMcpServer({ name: 'tracker' });
      const encryption = { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] };
      const instance = (port: number) =>
        startTestService({
          database,
          port,
          authMode: 'dev',
          admins: [adminName],
          encryption,
          serviceOptions: {
            fetch: secrets.recordingFetch(createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 })),
            routes: [tapServiceResponses(tapped)],
          },
        });
      a = await instance(portA);
      b = await instance(portB);
      metricsBefore = await (await a.api(adminName, '/metrics')).text();
    });

    afterAll(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
      await Promise.all(contexts.splice(0).map((c) => closeWithin(c, 10_000)));
      await b?.close();
      await a?.close();
      await tracker?.close();
      await entra?.close();
      await database?.drop();
    });

    async function signedIn(serviceUrl: string, name: string): Promise<Page> {
      const { context, page } = await openSession(browser, network);
      contexts.push(context);
      await signInAtDevLogin(page, serviceUrl, name);
      return page;
    }
    const keep = (page: Page) => keepPage(page, seen);

    /** An MCP SDK client on B holding only the person's nunq JWT. */
    async function agent(path: string): Promise<Client> {
      const jwt = await b.token(userName);
      const client = new Client({ name: 'e2e-agent', version: '1.0.0' }, { capabilities: {} });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${b.url}${path}`), {
          requestInit: { headers: { authorization: `Bearer ${jwt}` } },
        }),
      );
      clients.push(client);
      return client;
    }

    it('on A, the admin adds Microsoft Entra ID from its template with SharePoint; the secret is never shown again', async () => {
      admin = await signedIn(a.url, adminName);
      await admin.goto(`${a.url}/admin/providers`);
      await admin.getByRole('link', { name: 'Use Microsoft Entra ID' }).click();
      await admin.waitForURL((u) => u.pathname === '/admin/providers/new');
      expect(await admin.getByTestId('redirect-uri').textContent()).toBe(`${a.url}/oauth/callback`);
      await admin.getByLabel('Provider id').fill('entra');
      await admin.getByLabel(/^Tenant/).fill('organizations');
      await admin.getByLabel(/^Sign-in authority/).fill(entra.url);
      await admin.getByLabel('Client id').fill(clientId);
      await admin.getByLabel(/^Client secret/).fill(clientSecret);
      // SharePoint only: the other suggested integrations are unticked.
      await admin.getByRole('checkbox', { name: /OneDrive/ }).uncheck();
      await admin.getByRole('checkbox', { name: /Business Central/ }).uncheck();
      expect(await admin.getByRole('checkbox', { name: /SharePoint/ }).isChecked()).toBe(true);
      const post = await submitForm(admin, admin.getByRole('button', { name: 'Save' }), a.url);
      expect(post.status, post.detail).toBe(303);
      await admin.waitForURL(
        (u) => u.pathname === '/admin/providers' && u.searchParams.get('saved') === 'entra',
      );
      const row = admin.getByTestId('admin-providers').getByRole('row', { name: /entra/ });
      expect(await row.textContent()).toContain('set (write-only)');
      await keep(admin);
      expect(await admin.content()).not.toContain(clientSecret);
    });

    it('on A, the admin previews the MCP server by its URL, then saves it', async () => {
      await admin.goto(`${a.url}/admin/mcp-servers`);
      await admin.getByLabel('Server URL').fill(tracker.url);
      await admin.getByRole('button', { name: 'Preview' }).click();
      await admin.waitForURL((u) => u.pathname === '/admin/mcp-servers/preview');
      const found = admin.getByTestId('mcp-preview');
      expect(await found.textContent()).toContain(tracker.issuer);
      expect(await found.textContent()).toContain('dynamic client registration');
      expect(await admin.getByTestId('mcp-preview-problem').count()).toBe(0);
      await keep(admin);
      await admin.getByLabel(/^Id/).fill('tracker');
      await admin.getByLabel('Name users see').fill('Issue tracker');
      const post = await submitForm(admin, admin.getByRole('button', { name: 'Save' }), a.url);
      expect(post.status, post.detail).toBe(303);
      await admin.waitForURL((u) => u.searchParams.get('saved') === 'tracker');
      await keep(admin);
    });

    it('on B, a person sees both on the Integrations page and connects both; an agent calls the tool', async () => {
      person = await signedIn(b.url, userName);
      const card = (id: string) => person.getByTestId(`integration-${id}`);
      // B learns of A's additions from the database (its catalog cache lasts at most 1 s).
      await expect
        .poll(
          async () => {
            await person.goto(`${b.url}/`);
            return (await card('sharepoint').count()) + (await card('tracker').count());
          },
          { timeout: boundMs + 3_000 },
        )
        .toBe(2);
      await keep(person);

      let post = await submitForm(
        person,
        card('sharepoint').getByRole('button', { name: 'Connect', exact: true }),
        b.url,
      );
      expect(post.status, post.detail).toBe(303);
      await person.waitForURL((u) => u.origin === entra.url);
      await person.locator('input[name="login"]').fill(upn);
      await person.getByRole('button', { name: 'Sign in' }).click();
      await person.waitForURL((u) => u.origin === b.url && u.searchParams.get('outcome') === 'connected');
      ids.sharepoint = new URL(person.url()).searchParams.get('connection') ?? '';
      await keep(person);

      post = await submitForm(
        person,
        card('tracker').getByRole('button', { name: 'Connect', exact: true }),
        b.url,
      );
      expect(post.status, post.detail).toBe(303);
      await throughOidcProvider(person, tracker.issuer, 'megan');
      await person.waitForURL((u) => u.origin === b.url && u.searchParams.get('outcome') === 'connected');
      ids.tracker = new URL(person.url()).searchParams.get('connection') ?? '';
      await keep(person);
      expect(ids.sharepoint).toMatch(/^[0-9a-f-]{36}$/);
      expect(ids.tracker).toMatch(/^[0-9a-f-]{36}$/);

      const tools = await agent('/mcp/tracker');
      const answer = await tools.callTool({ name: 'echo', arguments: { text: 'through the gateway' } });
      expect(JSON.stringify(answer.content)).toContain('through the gateway');
    });

    it('on A, the admin sees both connections healthy in the overview', async () => {
      await admin.goto(`${a.url}/admin/connections`);
      for (const [integration, id] of Object.entries(ids)) {
        const row = admin.getByTestId(`admin-connection-${id}`);
        const text = (await row.textContent()) ?? '';
        expect(text).toContain(userName);
        expect(text).toContain(integration);
        expect(text).toContain('active');
      }
      await keep(admin);
      await admin.goto(`${a.url}/admin`);
      for (const id of Object.keys(ids)) {
        const cells = await admin.getByTestId(`admin-integration-${id}`).getByRole('cell').allTextContents();
        // Id, name, kind, provider or discovery, active, needs reconnecting, enabled.
        expect(cells[4]).toBe('1');
        expect(cells[5]).toBe('0');
        expect(cells[6]).toBe('yes');
      }
      await keep(admin);
    });

    it('on A, the admin disables both; on B, within 2 s, the proxy and both gateway endpoints refuse', async () => {
      const changed: number[] = [];
      for (const [id, section] of [
        ['sharepoint', 'integrations'],
        ['tracker', 'mcp-servers'],
      ] as const) {
        await admin.goto(`${a.url}/admin/${section}/${id}`);
        await admin.getByTestId('disable').click();
        await admin.waitForURL((u) => u.pathname === `/admin/${section}/${id}/disable`);
        expect(await admin.getByTestId('consequence').textContent()).toBe(
          '1 connection is kept but unusable until re-enabled.',
        );
        await keep(admin);
        const post = await submitForm(admin, admin.getByTestId('confirm-disable'), a.url);
        expect(post.status, post.detail).toBe(303);
        changed.push(Date.now());
        await admin.waitForURL((u) => u.pathname === `/admin/${section}/${id}`);
        expect(await admin.getByTestId('entry-status').textContent()).toContain('Disabled');
        await keep(admin);
      }
      const jwt = await b.token(userName);
      const bearer = { authorization: `Bearer ${jwt}` };
      const proxy = async () => {
        const r = await fetch(`${b.url}/api/v1/connections/${ids.sharepoint}/proxy/v1.0/me`, {
          headers: bearer,
        });
        const text = await r.text();
        seen.push({ where: 'proxy on B', text });
        return r.status === 409 ? (JSON.parse(text) as { code: string }).code : `${r.status}`;
      };
      const single = async () => {
        const r = await fetch(`${b.url}/mcp/tracker`, {
          method: 'POST',
          headers: {
            ...bearer,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 'e2e', version: '1' },
            },
          }),
        });
        const text = await r.text();
        seen.push({ where: '/mcp/tracker on B', text });
        return r.status === 409 ? (JSON.parse(text) as { code: string }).code : `${r.status}`;
      };
      // An agent on the aggregating /mcp of B (the same tool answered through /mcp/tracker before).
      const aggregate = await agent('/mcp');
      await expect
        .poll(() => Promise.all([proxy(), single()]), { timeout: boundMs + 3_000, interval: 100 })
        .toEqual(['integration_disabled', 'integration_disabled']);
      // The bound, from the second change's 303 (the first was earlier still).
      expect(Date.now() - changed[1]!).toBeLessThan(boundMs + 1_000);
      const call = (await aggregate.callTool({ name: 'tracker__echo', arguments: { text: 'x' } }).then(
        () => undefined,
        (error: { code?: number; data?: unknown }) => error,
      )) as { data?: unknown } | undefined;
      expect(call?.data).toEqual({ code: 'integration_disabled', integration: 'tracker' });
      expect((await aggregate.listTools()).tools.map((t) => t.name)).not.toContain('tracker__echo');
      // And the person no longer sees them on B's Integrations page.
      await person.goto(`${b.url}/`);
      expect(await person.getByTestId('integration-sharepoint').count()).toBe(0);
      expect(await person.getByTestId('integration-tracker').count()).toBe(0);
      await keep(person);
    });

    it('/metrics counters moved during the run', async () => {
      const after = await (await a.api(adminName, '/metrics')).text();
      const afterB = await (await b.api(adminName, '/metrics')).text();
      seen.push({ where: 'metrics A', text: after }, { where: 'metrics B', text: afterB });
      expect(metricSum(after, 'nunq_http_request_duration_seconds_count')).toBeGreaterThan(
        metricSum(metricsBefore, 'nunq_http_request_duration_seconds_count'),
      );
      // The two code exchanges happened on B, where the callbacks came.
      const exchanges = ['grant="authorization_code"', 'outcome="ok"'];
      expect(metricSum(afterB, 'nunq_token_requests_total', exchanges)).toBe(2);
      expect(metricSum(after, 'nunq_token_requests_total', exchanges)).toBe(0);
    });

    it('leaves no token, code, verifier or client secret in any response, page, log line or the database', async () => {
      await network.settle();
      const haystacks: Haystack[] = [];
      for (const svc of [a, b]) {
        const callbacks = network.requests.filter(
          (u) => new URL(u).origin === svc.url && new URL(u).pathname === '/oauth/callback',
        );
        secrets.addCodesFromUrls(callbacks, svc.url, '/oauth/callback');
        haystacks.push(
          ...(await serviceHaystacks({
            serviceUrl: svc.url,
            callbackPath: '/oauth/callback',
            network,
            tapped,
            logs: svc.logs,
            extra: seen,
            store: svc.service.ctx.store,
            database,
          })),
        );
      }
      // The scan has something to find: the pasted secret, the MCP server's registered secret, the
      // two codes and the tokens of both connections.
      expect(secrets.count('client_secret')).toBe(2);
      expect(secrets.count('authorization_code')).toBe(2);
      expect(secrets.count('refresh_token')).toBeGreaterThanOrEqual(2);
      expect(findSecrets(secrets.list(), haystacks)).toEqual([]);
    });
  },
);
