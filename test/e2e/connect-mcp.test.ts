/**
 * The MCP journey in a real browser (Chromium) against real OAuth-protected MCP servers (the MCP
 * SDK's server, each with its own oidc-provider offering dynamic registration and RFC 8707
 * resource indicators, 3-second access tokens), on SQLite and PostgreSQL:
 * - a person connects an MCP server on the Integrations page;
 * - an MCP SDK client holding only the nunq JWT lists and calls its tools through `/mcp/:id` and
 *   through the aggregating `/mcp`;
 * - after the access token expires the next call refreshes transparently;
 * - a client that declared `elicitation.url` calling a server that is not connected yet gets
 *   -32042, the browser completes the URL, the session hears `notifications/elicitation/complete`
 *   and the retried call succeeds;
 * - the upstream never receives the nunq credential, and no token appears in any response, log
 *   line, page or the database.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitationCompleteNotificationSchema,
  ErrorCode,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMcpServer, startMcpServer } from '../../src/demo/mcp-server.js';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import {
  type Browser,
  type BrowserContext,
  closeWithin,
  launchBrowser,
  NetworkRecord,
  openSession,
  type Page,
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

const login = 'alice';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe.each(databaseKinds)(
  'an agent uses MCP servers through the gateway, connected in Chromium, on %s',
  (kind) => {
    const secrets = new SecretsCollector();
    const network = new NetworkRecord();
    const tapped: TappedResponse[] = [];
    const seen: Haystack[] = [];
    const contexts: BrowserContext[] = [];
    const clients: Client[] = [];
    let database: TestDatabase;
    let tracker: RunningMcpServer;
    let notes: RunningMcpServer;
    let svc: TestService;
    let page: Page;
    const userId = `mcp-e2e-${kind}`;
    let jwt = '';

    beforeAll(async () => {
      database = await createTestDatabase(kind);
      tracker = await startMcpServer({ accessTokenTtlSeconds: 3, name: 'tracker' });
      notes = await startMcpServer({ name: 'notes' });
      svc = await startTestService({
        database,
        port: await freePort(),
        mcpServers: [
          { id: 'tracker', name: 'Issue tracker', url: tracker.url },
          { id: 'notes', name: 'Notes', url: notes.url },
        ],
        serviceOptions: {
          fetch: secrets.recordingFetch(createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 })),
          routes: [tapServiceResponses(tapped)],
        },
      });
      jwt = await svc.token(userId);
      const session = await openSession(browser, network);
      contexts.push(session.context);
      page = session.page;
      await page.goto(`${svc.url}/session?token=${jwt}&return_to=/`);
      await page.waitForURL(`${svc.url}/`);
    });

    afterAll(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
      await Promise.all(contexts.splice(0).map((c) => closeWithin(c, 10_000)));
      await svc?.close();
      await tracker?.close();
      await notes?.close();
      await database?.drop();
    });

    const throughProvider = (issuer: string) => throughOidcProvider(page, issuer, login);

    /** An MCP SDK client that holds only the nunq JWT; every answer it gets is kept for the scan. */
    async function agent(path: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
      const recording: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if (response.body === null) return response;
        // Every chunk the client reads is also kept (streams stay open, so no clone is waited on).
        const kept: Haystack = { where: `gateway answer ${path} (${response.status})`, text: '' };
        seen.push(kept);
        const decoder = new TextDecoder();
        const body = response.body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              kept.text += decoder.decode(chunk, { stream: true });
              controller.enqueue(chunk);
            },
          }),
        );
        return new Response(body, { status: response.status, headers: response.headers });
      };
      const transport = new StreamableHTTPClientTransport(new URL(path, svc.url), {
        requestInit: { headers: { authorization: `Bearer ${jwt}` } },
        fetch: recording,
      });
      const client = new Client({ name: 'e2e-agent', version: '1.0.0' }, { capabilities });
      await client.connect(transport);
      clients.push(client);
      return client;
    }

    const text = (result: unknown) =>
      ((result as { content?: Array<{ type: string; text?: string }> }).content ?? [])
        .map((c) => c.text ?? '')
        .join('');

    it('connects the tracker MCP server on the Integrations page', async () => {
      const card = page.getByTestId('integration-tracker');
      expect(await card.getByTestId('status-tracker').textContent()).toBe('Not connected');
      const post = await submitForm(
        page,
        card.getByRole('button', { name: 'Connect', exact: true }),
        svc.url,
      );
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((url) => url.origin === new URL(tracker.issuer).origin);
      expect(await throughProvider(tracker.issuer)).toEqual(['login', 'consent']);
      await page.waitForURL((url) => url.origin === svc.url && url.pathname === '/');
      expect(new URL(page.url()).searchParams.get('outcome')).toBe('connected');
      expect((await card.getByTestId('status-tracker').textContent())?.trim()).toMatch(/^Connected/);
      seen.push({ where: 'integrations page', text: await page.content() });
      expect(tracker.received.registrations).toHaveLength(1);
    });

    it('lists and calls its tools through /mcp/tracker and /mcp with only the nunq JWT', async () => {
      const direct = await agent('/mcp/tracker');
      const tools = (await direct.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['echo', 'whoami', 'add']));
      expect(text(await direct.callTool({ name: 'echo', arguments: { text: 'hello' } }))).toBe('hello');
      // The upstream got the user's own token: its subject is the account signed in at the provider.
      expect(text(await direct.callTool({ name: 'whoami', arguments: {} }))).toBe(login);

      const aggregate = await agent('/mcp');
      const names = (await aggregate.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['tracker__echo', 'tracker__whoami']));
      // Only connected servers are listed.
      expect(names.some((n) => n.startsWith('notes__'))).toBe(false);
      const sum = await aggregate.callTool({ name: 'tracker__add', arguments: { a: 2, b: 3 } });
      expect(text(sum)).toBe('5');
    });

    it('refreshes transparently after the 3-second access token expired', async () => {
      const client = await agent('/mcp/tracker');
      const refreshesBefore = tracker.received.tokenRequests.filter(
        (r) => r.grantType === 'refresh_token',
      ).length;
      await new Promise((resolve) => setTimeout(resolve, 3_300));
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'later' } }))).toBe('later');
      const refreshes = tracker.received.tokenRequests.filter((r) => r.grantType === 'refresh_token');
      expect(refreshes.length).toBe(refreshesBefore + 1);
      expect(refreshes.at(-1)).toMatchObject({ resource: tracker.url, status: 200 });
    });

    it('asks an elicitation.url client to connect a server first (-32042), then the retried call succeeds', async () => {
      const client = await agent('/mcp/notes', { elicitation: { url: {} } });
      const completed: string[] = [];
      client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
        completed.push(n.params.elicitationId);
      });
      const refused = await client.callTool({ name: 'echo', arguments: { text: 'note' } }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(McpError);
      expect((refused as McpError).code).toBe(ErrorCode.UrlElicitationRequired);
      const elicitation = ((refused as McpError).data as { elicitations: Array<Record<string, string>> })
        .elicitations[0]!;
      const url = new URL(elicitation.url!);
      expect(url.origin).toBe(svc.url);
      expect(url.pathname).toBe('/connect/notes');
      // Opaque: no scopes or user in it.
      expect([...url.searchParams.keys()]).toEqual(['elicitation']);

      await page.goto(url.href);
      const post = await submitForm(page, page.getByTestId('confirm-connect'), svc.url);
      expect(post.status, post.detail).toBe(303);
      await page.waitForURL((u) => u.origin === new URL(notes.issuer).origin);
      expect(await throughProvider(notes.issuer)).toEqual(['login', 'consent']);
      await page.waitForURL((u) => u.origin === svc.url && u.pathname === '/');
      expect(new URL(page.url()).searchParams.get('outcome')).toBe('connected');

      await expect.poll(() => completed, { timeout: 10_000 }).toContain(elicitation.elicitationId);
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'note' } }))).toBe('note');
    });

    it('never lets the nunq credential reach an upstream', () => {
      const presented = [...tracker.received.bearerTokens, ...notes.received.bearerTokens];
      expect(presented.length).toBeGreaterThan(0);
      expect(presented).not.toContain(jwt);
      const headers = [...tracker.received.requests, ...notes.received.requests].map(
        (r) => r.authorization ?? '',
      );
      expect(headers.some((h) => h.includes(jwt))).toBe(false);
    });

    it('leaves no token in any response, page, log line or the database', async () => {
      await network.settle();
      expect(secrets.count('access_token')).toBeGreaterThanOrEqual(3);
      expect(secrets.count('refresh_token')).toBeGreaterThanOrEqual(2);
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
      expect(seen.filter((h) => h.where.startsWith('gateway')).length).toBeGreaterThan(5);
      expect(findSecrets(secrets.list(), haystacks)).toEqual([]);
    });
  },
);
