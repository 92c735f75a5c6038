/**
 * Connecting an OAuth-protected MCP server through the same flow, token service and lifecycle as
 * every other integration, against the real MCP test server (MCP SDK, its own oidc-provider with
 * dynamic registration and RFC 8707 resource indicators, 3-second access tokens), on SQLite and
 * PostgreSQL: discovery, dynamic registration (sealed, shared), PKCE S256, `resource` on every
 * request, refresh, Reconnect, Disconnect with revocation, and a readable problem for a server that
 * cannot be connected.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMcpServer } from '../../src/demo/mcp-server.js';
import { startMcpServer } from '../../src/demo/mcp-server.js';
import { McpElicitationRepository } from '../../src/store/repos/mcp-elicitations.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

describe.each(databaseKinds)('connecting an MCP server on %s', (kind) => {
  let database: TestDatabase;
  let peer: RunningMcpServer;
  let svc: TestService;
  /** A server that answers 401 with a challenge naming metadata on a private address. */
  let hostile: ReturnType<typeof createServer>;
  let hostileUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    peer = await startMcpServer({ accessTokenTtlSeconds: 3 });
    hostile = createServer((_req, res) => {
      res.writeHead(401, {
        'www-authenticate': 'Bearer resource_metadata="http://169.254.169.254/latest/meta-data"',
      });
      res.end();
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    hostileUrl = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/mcp`;
    svc = await startTestService({
      database,
      admins: ['root'],
      mcpServers: [
        { id: 'tools', name: 'Demo tools', url: peer.url },
        { id: 'broken', name: 'Broken tools', url: hostileUrl },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await peer?.close();
    await new Promise((resolve) => hostile?.close(resolve));
    await database?.drop();
  });

  it('lists the MCP server as an integration of kind mcp', async () => {
    const res = await svc.api('alice', '/api/v1/integrations');
    expect(res.status).toBe(200);
    const list = (await res.json()) as Array<{ id: string; kind: string; status: string }>;
    expect(list.find((i) => i.id === 'tools')).toMatchObject({ kind: 'mcp', status: 'not_connected' });
  });

  let connectionId = '';

  it('connects with dynamic registration, PKCE S256 and the resource indicator, and refreshes after expiry', async () => {
    const ua = await signedInAgent(svc, 'alice');
    const authorizationUrl = await ua.startConnect(svc.url, 'tools');
    expect(authorizationUrl.origin).toBe(new URL(peer.issuer).origin);
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('resource')).toBe(peer.url);
    // Registered dynamically, as a web application, with our exact callback.
    expect(peer.received.registrations).toHaveLength(1);
    expect(peer.received.registrations[0]).toMatchObject({
      application_type: 'web',
      redirect_uris: [`${svc.url}/oauth/callback`],
    });
    expect(authorizationUrl.searchParams.get('client_id')).toBe(peer.received.registrations[0]!.client_id);

    const callback = await ua.signInAtOidcProvider(authorizationUrl, 'alice');
    const done = await ua.get(callback.href);
    const back = new URL(done.headers.get('location') ?? '/', svc.url);
    expect(back.searchParams.get('outcome')).toBe('connected');
    connectionId = back.searchParams.get('connection') ?? '';
    expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);

    const codeRequest = peer.received.tokenRequests.find((r) => r.grantType === 'authorization_code');
    expect(codeRequest).toMatchObject({ resource: peer.url, status: 200 });

    // The registration is stored sealed: the raw row holds no client secret in clear.
    const rows = await svc.service.ctx.store.db.selectFrom('mcp_registrations').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.registration_sealed).not.toContain('client_secret');
    const discovered = await svc.service.ctx.mcpDiscovery.list();
    expect(discovered.get('tools')).toMatchObject({
      ok: true,
      summary: { resource: peer.url, issuer: peer.issuer, registration: 'dynamic' },
    });

    // The 3-second access token expires; the next use refreshes, with the resource indicator.
    const first = await svc.service.ctx.tokens.getAccessToken(connectionId);
    await new Promise((resolve) => setTimeout(resolve, 3_300));
    const second = await svc.service.ctx.tokens.getAccessToken(connectionId);
    expect(second.value).not.toBe(first.value);
    expect(second.expiresAt).toBeGreaterThan(Date.now());
    const refresh = peer.received.tokenRequests.find((r) => r.grantType === 'refresh_token');
    expect(refresh).toMatchObject({ resource: peer.url, status: 200 });
  });

  it('reuses the shared registration for another user, and reconnects on the same connection', async () => {
    const ua = await signedInAgent(svc, 'bob');
    const authorizationUrl = await ua.startConnect(svc.url, 'tools');
    expect(peer.received.registrations).toHaveLength(1);
    const callback = await ua.signInAtOidcProvider(authorizationUrl, 'bob');
    const done = await ua.get(callback.href);
    expect(new URL(done.headers.get('location') ?? '/', svc.url).searchParams.get('outcome')).toBe(
      'connected',
    );

    const alice = await signedInAgent(svc, 'alice');
    const again = await alice.startReconnect(svc.url, connectionId);
    const back = await alice.get((await alice.signInAtOidcProvider(again, 'alice')).href);
    const url = new URL(back.headers.get('location') ?? '/', svc.url);
    expect(url.searchParams.get('outcome')).toBe('reconnected');
    expect(url.searchParams.get('connection')).toBe(connectionId);
  });

  it('names the problem of a server whose metadata points at a private address, and sends nothing there', async () => {
    const ua = await signedInAgent(svc, 'alice');
    const page = await ua.get(`${svc.url}/connect/broken`);
    expect(page.status).toBe(200);
    // A person pressing Connect gets a page naming the problem, not JSON.
    const pressed = await ua.post(`${svc.url}/connect/broken`, {
      _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!,
      return_to: '/',
    });
    expect(pressed.status).toBe(502);
    expect(pressed.headers.get('content-type')).toContain('text/html');
    expect(pressed.body).toContain('169.254.169.254');
    expect(pressed.body).toContain('Nothing was changed');
    const res = await svc.api('alice', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'broken' }),
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('mcp_discovery_failed');
    expect(problem.detail).toContain('169.254.169.254');
    const home = await ua.get(`${svc.url}/`);
    expect(home.body).toContain('data-testid="problem-broken"');
    expect(home.body).toContain('169.254.169.254');
    const admin = await (await signedInAgent(svc, 'root')).get(`${svc.url}/admin`);
    expect(admin.status).toBe(200);
    expect(admin.body).toMatch(/data-testid="admin-problem-broken">[^<]*169\.254\.169\.254/);
    const count = await svc.service.ctx.store.db
      .selectFrom('connections')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('integration_id', '=', 'broken')
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(0);
  });

  it("answers the gateway's elicitation link: only its user, with its scopes, completed even when the flow was parked", async () => {
    const elicitations = new McpElicitationRepository(svc.service.ctx.store.db);
    const link = await elicitations.create({
      userId: 'carol',
      integrationId: 'tools',
      sessionId: null,
      scopes: ['tools:read', 'tools:admin'],
      now: Date.now(),
    });
    // Another user's browser gets "expired", never a flow for carol.
    const mallory = await signedInAgent(svc, 'mallory');
    const foreign = await mallory.get(`${svc.url}/connect/tools?elicitation=${link.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body).not.toContain('confirm-connect');
    // Nor for another integration.
    const carol = await signedInAgent(svc, 'carol');
    expect((await carol.get(`${svc.url}/connect/broken?elicitation=${link.id}`)).status).toBe(404);

    // Carol starts it in one browser and finishes it in another: parked, then confirmed.
    const page = await carol.get(`${svc.url}/connect/tools?elicitation=${link.id}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`name="elicitation" value="${link.id}"`);
    const start = await carol.post(`${svc.url}/connect/tools`, {
      _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!,
      return_to: '/',
      elicitation: link.id,
    });
    expect(start.status).toBe(303);
    const authorizationUrl = new URL(start.location!);
    expect(authorizationUrl.searchParams.get('scope')?.split(' ')).toEqual(
      expect.arrayContaining(['tools:read', 'tools:admin']),
    );
    const other = await signedInAgent(svc, 'carol');
    const callback = await other.signInAtOidcProvider(authorizationUrl, 'carol');
    const parked = await other.get(callback.href);
    expect((await elicitations.findForUser(link.id, 'carol'))?.status).toBe('pending');
    const confirmed = await other.answerParked(parked, 'connect');
    expect(confirmed.status).toBe(303);
    expect((await elicitations.findForUser(link.id, 'carol'))?.status).toBe('complete');
    const connection = await svc.service.ctx.connections.findByUserAndIntegration('carol', 'tools');
    expect(JSON.parse(connection!.scopes)).toEqual(expect.arrayContaining(['tools:admin']));
  });

  it('disconnects with revocation at the authorization server', async () => {
    const res = await svc.api('alice', `/api/v1/connections/${connectionId}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    const after = await svc.api('alice', `/api/v1/connections/${connectionId}`);
    expect(after.status).toBe(404);
  });

  it('registers again, once, after the authorization server forgot our registration (invalid_client)', async () => {
    const bob = await svc.service.ctx.connections.findByUserAndIntegration('bob', 'tools');
    expect(bob).toBeDefined();
    const registered = peer.received.registrations.length;
    expect(peer.dropRegistrations()).toBeGreaterThan(0);
    await expect(svc.service.ctx.tokens.getAccessToken(bob!.id, { force: true })).rejects.toMatchObject({
      code: 'provider_misconfigured',
    });
    const rows = await svc.service.ctx.store.db.selectFrom('mcp_registrations').selectAll().execute();
    expect(rows).toHaveLength(0);
    // The next Connect registers anew (one registration, not a loop) and succeeds.
    const ua = await signedInAgent(svc, 'dave');
    const authorizationUrl = await ua.startConnect(svc.url, 'tools');
    expect(peer.received.registrations).toHaveLength(registered + 1);
    const done = await ua.get((await ua.signInAtOidcProvider(authorizationUrl, 'dave')).href);
    expect(new URL(done.headers.get('location') ?? '/', svc.url).searchParams.get('outcome')).toBe(
      'connected',
    );
  });

  it('serves our Client ID Metadata Document', async () => {
    const res = await fetch(`${svc.url}/oauth/client-metadata.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      client_id: `${svc.url}/oauth/client-metadata.json`,
      redirect_uris: [`${svc.url}/oauth/callback`],
      token_endpoint_auth_method: 'none',
    });
  });
});
