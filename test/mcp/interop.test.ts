/**
 * Interop: MCP servers as they are found in the field, each Connected through the service and
 * used through the MCP gateway, against the real MCP test server (MCP SDK, its own oidc-provider):
 * metadata only at the root well-known, an issuer with a path, OIDC-only metadata, Client ID
 * Metadata Documents, a configured client where nothing else is offered, an authorization server
 * that ignores `resource`, a bare `Bearer` challenge, step-up on 403, and a 2025-03-26 server with
 * no metadata at all. Each test checks the authorization request, that Connect succeeds, and one
 * tool call through `/mcp/:integrationId` by an agent holding only the nunq JWT, whose JWT the
 * server never sees. SQLite only: the connect path runs on both databases in connect.test.ts.
 */
import {
  ElicitationCompleteNotificationSchema,
  UrlElicitationRequiredError,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  adminToolName,
  type RunningMcpServer,
  type StartMcpServerOptions,
  startMcpServer,
  toolsAdminScope,
  toolsReadScope,
} from '../../src/demo/mcp-server.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { connectMcpServer, finishAtProvider, followConnectLink, gatewayAgent, textOf } from './support.js';

/**
 * Where the Client ID Metadata Document is "hosted" (`mcp.clientMetadataUrl`, which must be
 * https). The test server's CIMD resolver fetches it with the global `fetch`; during the CIMD test
 * that fetch maps this one URL to the document the service serves at
 * `{publicUrl}/oauth/client-metadata.json` (which names this URL as its client_id), as a CDN in
 * front of the service would. Every other request goes through unchanged.
 */
const cimdUrl = 'https://nunq-cimd.example/oauth/client-metadata.json';

describe('MCP interop through the service (SQLite)', () => {
  let database: TestDatabase;
  let svc: TestService;
  const peers = new Map<string, RunningMcpServer>();
  const peer = (id: string) => peers.get(id) ?? expect.fail(`no peer ${id}`);

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/oauth/callback`;
    const variants: Record<string, StartMcpServerOptions> = {
      'root-only': { metadata: 'root-only' },
      'issuer-path': { issuerPath: '/tenant1' },
      'oidc-only': { oidcOnly: true },
      'oidc-only-path': { oidcOnly: true, issuerPath: '/tenant2' },
      cimd: { cimd: true },
      configured: {
        registration: false,
        client: { redirectUris: [callback], tokenEndpointAuthMethod: 'client_secret_post' },
      },
      'ignores-resource': { ignoreResource: true },
      'ignores-resource-omit': { ignoreResource: true },
      bare: { bareChallenge: true },
      'step-up': {},
      legacy: { metadata: 'none', authServerMetadata: false },
    };
    await Promise.all(
      Object.entries(variants).map(async ([id, options]) => {
        peers.set(id, await startMcpServer({ ...options, name: id }));
      }),
    );
    const configured = peer('configured').client ?? expect.fail('no pre-registered client');
    const mcpServers = [...peers].map(([id, p]) => ({
      id,
      name: `MCP ${id}`,
      url: p.url,
      ...(id === 'configured'
        ? {
            clientId: configured.clientId,
            clientSecret: configured.clientSecret,
            clientAuthMethod: 'client_secret_post',
          }
        : {}),
      ...(id === 'ignores-resource-omit' ? { resource: 'omit' } : {}),
      // Without metadata nothing names a scope, and this server (oidc-provider) denies a request
      // with none: the admin configures them, as for any server that gives no hint.
      ...(id === 'legacy' ? { scopes: [toolsReadScope] } : {}),
    }));
    svc = await startTestService({ database, port, mcpServers, mcp: { clientMetadataUrl: cimdUrl } });
  });

  afterAll(async () => {
    vi.unstubAllGlobals();
    await svc?.close();
    await Promise.all([...peers.values()].map((p) => p.close()));
    await database?.drop();
  });

  /** The scopes of the challenge (`tools:read`), plus `offline_access`, which the server lists. */
  const challengeScopes = [toolsReadScope, 'offline_access'];

  /**
   * What every interop test checks of an authorization request: at the server's authorization
   * endpoint, PKCE S256, our callback, `resource` (or none), the client and the scopes.
   */
  const expectAuthorizationRequest = (
    url: URL,
    expected: { authorizationEndpoint: string; resource?: string; clientId: string; scopes: string[] },
  ) => {
    expect(`${url.origin}${url.pathname}`).toBe(expected.authorizationEndpoint);
    const params = url.searchParams;
    expect(params.get('response_type')).toBe('code');
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get('state')).toBeTruthy();
    expect(params.get('redirect_uri')).toBe(`${svc.url}/oauth/callback`);
    expect(params.get('resource')).toBe(expected.resource ?? null);
    expect(params.get('client_id')).toBe(expected.clientId);
    expect((params.get('scope') ?? '').split(' ').filter(Boolean).sort()).toEqual(
      [...expected.scopes].sort(),
    );
  };

  /** The one dynamically registered client of `p` (registered by the service, as a web app). */
  const registeredClientId = (p: RunningMcpServer): string => {
    expect(p.received.registrations).toHaveLength(1);
    expect(p.received.registrations[0]).toMatchObject({
      application_type: 'web',
      redirect_uris: [`${svc.url}/oauth/callback`],
    });
    return String(p.received.registrations[0]!.client_id);
  };

  /** The code exchange the service made at `p`: successful, with `resource` (or without). */
  const expectCodeExchange = (p: RunningMcpServer, expected: { resource?: string; clientId: string }) => {
    const exchange = p.received.tokenRequests.filter((r) => r.grantType === 'authorization_code');
    expect(exchange).toHaveLength(1);
    expect(exchange[0]).toMatchObject({ status: 200, clientId: expected.clientId });
    expect(exchange[0]!.resource).toBe(expected.resource);
  };

  /**
   * One tool call through `/mcp/:integrationId` by an agent holding only the nunq JWT: `whoami`
   * answers with the subject of the token the server got (the user's own); the server never saw
   * the nunq JWT.
   */
  const expectGatewayCall = async (integrationId: string, userId: string) => {
    const p = peer(integrationId);
    const { client, jwt } = await gatewayAgent(svc, userId, integrationId);
    try {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      expect(result.isError ?? false).toBe(false);
      expect(textOf(result)).toBe(userId);
    } finally {
      await client.close();
    }
    expect(p.received.bearerTokens.length).toBeGreaterThan(0);
    expect(p.received.bearerTokens).not.toContain(jwt);
    expect(p.received.bearerTokens.some((t) => t.includes(jwt) || jwt.includes(t))).toBe(false);
  };

  const discovered = async (integrationId: string) =>
    (await svc.service.ctx.mcpDiscovery.list()).get(integrationId);

  it('metadata only at the root well-known', async () => {
    const p = peer('root-only');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-root', 'root-only');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    expect(p.resourceMetadataUrl).toBe(`${new URL(p.url).origin}/.well-known/oauth-protected-resource`);
    const fetched = p.received.requests.map((r) => r.path);
    expect(fetched).toContain('/.well-known/oauth-protected-resource');
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('root-only', 'u-root');
  });

  it('an issuer with a path', async () => {
    const p = peer('issuer-path');
    expect(new URL(p.issuer).pathname).toBe('/tenant1');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-path', 'issuer-path');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    expect(await discovered('issuer-path')).toMatchObject({ ok: true, summary: { issuer: p.issuer } });
    // RFC 8414 path-inserted, the first place the spec's order looks for an issuer with a path.
    expect(p.received.requests.map((r) => r.path)).toContain(
      '/.well-known/oauth-authorization-server/tenant1',
    );
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('issuer-path', 'u-path');
  });

  it('OIDC-only metadata at the root', async () => {
    const p = peer('oidc-only');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-oidc', 'oidc-only');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    const answered = p.received.requests.filter((r) => r.path.includes('/.well-known/'));
    expect(answered.map((r) => r.path)).toContain('/.well-known/openid-configuration');
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('oidc-only', 'u-oidc');
  });

  it('OIDC-only metadata for an issuer with a path (path-appended only)', async () => {
    const p = peer('oidc-only-path');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-oidc-path', 'oidc-only-path');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    expect(p.received.requests.map((r) => r.path)).toContain('/tenant2/.well-known/openid-configuration');
    expect(await discovered('oidc-only-path')).toMatchObject({ ok: true, summary: { issuer: p.issuer } });
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('oidc-only-path', 'u-oidc-path');
  });

  it('CIMD: the client_id is our metadata document URL, fetched by the authorization server; no registration', async () => {
    const p = peer('cimd');
    const realFetch = globalThis.fetch;
    vi.stubGlobal('fetch', (input: string | URL | Request, init?: RequestInit) =>
      String(input instanceof Request ? input.url : input) === cimdUrl
        ? realFetch(`${svc.url}/oauth/client-metadata.json`, init)
        : realFetch(input, init),
    );
    try {
      const { authorizationUrl } = await connectMcpServer(svc, 'u-cimd', 'cimd');
      expectAuthorizationRequest(authorizationUrl, {
        authorizationEndpoint: `${p.issuer}/authorize`,
        resource: p.url,
        clientId: cimdUrl,
        scopes: challengeScopes,
      });
    } finally {
      vi.unstubAllGlobals();
    }
    // CIMD comes before dynamic registration, which this server offers too.
    expect(p.received.registrations).toEqual([]);
    expect(p.received.cimdFetches.length).toBeGreaterThan(0);
    expect(p.received.cimdFetches.every((f) => f.url === cimdUrl && f.problem === undefined)).toBe(true);
    expect(await discovered('cimd')).toMatchObject({ ok: true, summary: { registration: 'cimd' } });
    expectCodeExchange(p, { resource: p.url, clientId: cimdUrl });
    await expectGatewayCall('cimd', 'u-cimd');
  });

  it('no registration offered: the client configured for the server, with client_secret_post', async () => {
    const p = peer('configured');
    const configured = p.client ?? expect.fail('no pre-registered client');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-conf', 'configured');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: configured.clientId,
      scopes: challengeScopes,
    });
    expect(p.received.registrations).toEqual([]);
    expect(await discovered('configured')).toMatchObject({
      ok: true,
      summary: { registration: 'configured' },
    });
    // The server accepts only client_secret_post for this client: a 200 proves the method and secret.
    expectCodeExchange(p, { resource: p.url, clientId: configured.clientId });
    const tokenCall = p.received.requests.find((r) => r.path === '/token');
    expect(tokenCall?.authorization).toBeUndefined();
    await expectGatewayCall('configured', 'u-conf');
  });

  it('an authorization server that ignores resource: resource sent all the same', async () => {
    const p = peer('ignores-resource');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-ign', 'ignores-resource');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('ignores-resource', 'u-ign');
  });

  it('an authorization server that ignores resource, with resource: omit: no resource anywhere', async () => {
    const p = peer('ignores-resource-omit');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-omit', 'ignores-resource-omit');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      clientId: registeredClientId(p),
      scopes: challengeScopes,
    });
    expect(p.received.authorizationRequests.every((r) => r.resource === undefined)).toBe(true);
    expectCodeExchange(p, { clientId: registeredClientId(p) });
    await expectGatewayCall('ignores-resource-omit', 'u-omit');
  });

  it('a bare Bearer challenge: metadata at the well-known location, scopes from scopes_supported', async () => {
    const p = peer('bare');
    const { authorizationUrl } = await connectMcpServer(svc, 'u-bare', 'bare');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${p.issuer}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      scopes: [toolsReadScope, toolsAdminScope, 'offline_access'],
    });
    expect(p.received.requests.map((r) => r.path)).toContain('/.well-known/oauth-protected-resource/mcp');
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('bare', 'u-bare');
  });

  it('a 2025-03-26 server with no metadata: default /authorize, /token, /register at its origin, configured scopes', async () => {
    const p = peer('legacy');
    const origin = new URL(p.url).origin;
    const { authorizationUrl } = await connectMcpServer(svc, 'u-legacy', 'legacy');
    expectAuthorizationRequest(authorizationUrl, {
      authorizationEndpoint: `${origin}/authorize`,
      resource: p.url,
      clientId: registeredClientId(p),
      // No metadata lists offline_access, so it is not asked for.
      scopes: [toolsReadScope],
    });
    const paths = p.received.requests.map((r) => r.path);
    expect(paths).toContain('/register');
    expect(paths).toContain('/token');
    expect(await discovered('legacy')).toMatchObject({ ok: true, summary: { issuer: origin } });
    expectCodeExchange(p, { resource: p.url, clientId: registeredClientId(p) });
    await expectGatewayCall('legacy', 'u-legacy');
  });

  it('step-up on 403 insufficient_scope: a link on our origin asks for the granted scopes plus tools:admin; the retried call succeeds', async () => {
    const p = peer('step-up');
    const userId = 'u-step';
    const { ua, connectionId } = await connectMcpServer(svc, userId, 'step-up');
    const clientId = registeredClientId(p);
    // One agent without URL elicitation (an isError result with the link), one with it (-32042).
    const plain = await gatewayAgent(svc, userId, 'step-up');
    const eliciting = await gatewayAgent(svc, userId, 'step-up', { elicitation: { url: {} } });
    const completed: string[] = [];
    eliciting.client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
      completed.push(n.params.elicitationId);
    });
    try {
      const refused = await plain.client.callTool({ name: adminToolName, arguments: {} });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain('MCP step-up');
      const link = /(http:\/\/\S+?\/connect\/step-up\?elicitation=[A-Za-z0-9_-]{43})/.exec(
        textOf(refused),
      )?.[1];
      expect(link, textOf(refused)).toBeDefined();
      expect(new URL(link!).origin).toBe(svc.url);
      // The server refused the call with 403 insufficient_scope.
      expect(p.received.requests.some((r) => r.path === '/mcp' && r.status === 403)).toBe(true);

      const error = await eliciting.client
        .callTool({ name: adminToolName, arguments: {} })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UrlElicitationRequiredError);
      const elicitation =
        (error as UrlElicitationRequiredError).elicitations[0] ?? expect.fail('no elicitation');
      expect(elicitation.mode).toBe('url');
      const url = elicitation?.mode === 'url' ? elicitation.url : expect.fail('no URL elicitation');
      expect(url).toBe(`${svc.url}/connect/step-up?elicitation=${elicitation.elicitationId}`);

      const stepUp = await followConnectLink(ua, url);
      expectAuthorizationRequest(stepUp, {
        authorizationEndpoint: `${p.issuer}/authorize`,
        resource: p.url,
        clientId,
        scopes: [...challengeScopes, toolsAdminScope],
      });
      expect(await finishAtProvider(svc, ua, stepUp, userId, 'reconnected')).toBe(connectionId);
      // The session that was asked is told, on its stream, that the user acted.
      for (let i = 0; i < 50 && completed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(completed).toEqual([elicitation.elicitationId]);

      for (const { client } of [eliciting, plain]) {
        const retried = await client.callTool({ name: adminToolName, arguments: {} });
        expect(retried.isError ?? false).toBe(false);
        expect(textOf(retried)).toBe(`admin operation done for ${userId}`);
      }
    } finally {
      await Promise.all([plain.client.close(), eliciting.client.close()]);
    }
    expect(p.received.bearerTokens).not.toContain(plain.jwt);
    expect(p.received.bearerTokens).not.toContain(eliciting.jwt);
  });
});
