import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitRequestSchema,
  LATEST_PROTOCOL_VERSION,
  type Progress,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StartMcpServerOptions } from '../../src/demo/mcp-server.js';
import {
  authorizeMcpClient,
  connectMcpClient,
  type RunningMcpServer,
  startMcpPeer,
  TestOAuthClient,
  testRedirectUri,
} from '../support/mcp-peer.js';
import { UserAgent } from '../support/user-agent.js';

const PRM_AT_PATH = '/.well-known/oauth-protected-resource/mcp';
const PRM_AT_ROOT = '/.well-known/oauth-protected-resource';
const TOOLS = ['echo', 'add', 'whoami', 'slow', 'ask', 'admin_op', 'hang_up'];

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A raw JSON-RPC POST to the MCP endpoint, as an MCP client would send it. */
function rpc(url: string, token: string | undefined, body: object, sessionId?: string): Promise<Response> {
  const headers = new Headers({
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
  });
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  if (sessionId !== undefined) headers.set('mcp-session-id', sessionId);
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
}

const toolsList = { jsonrpc: '2.0', id: 1, method: 'tools/list' };

function accessToken(client: TestOAuthClient): string {
  const token = client.tokens()?.access_token;
  if (token === undefined) throw new Error('no access token');
  return token;
}

async function whoami(client: Client): Promise<unknown> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return result.structuredContent;
}

/** Waits until the server has answered the client's GET (its standalone SSE stream) with 200. */
async function standaloneStreamOpen(peer: RunningMcpServer): Promise<void> {
  await vi.waitFor(() =>
    expect(
      peer.received.requests.some((r) => r.method === 'GET' && r.path === '/mcp' && r.status === 200),
    ).toBe(true),
  );
}

/** An MCP SDK client that sends a fixed bearer token (no OAuth of its own). */
async function clientWithToken(url: string, token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'fixed-token-client', version: '1.0.0' });
  await client.connect(transport);
  closers.push(() => client.close());
  return client;
}

describe('MCP test server: authorization', () => {
  it('registers a client (RFC 7591), authorizes with PKCE S256 and the resource, and issues a JWT for /mcp', async () => {
    const peer = await startMcpPeer();
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });

    expect(peer.received.registrations).toHaveLength(1);
    expect(peer.received.registrations[0]).toMatchObject({ redirect_uris: [testRedirectUri] });
    const [authorization] = peer.received.authorizationRequests;
    expect(authorization).toMatchObject({
      response_type: 'code',
      code_challenge_method: 'S256',
      resource: peer.url,
      scope: 'tools:read',
    });
    expect(authorization?.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(peer.received.tokenRequests).toEqual([
      expect.objectContaining({ grantType: 'authorization_code', resource: peer.url, status: 200 }),
    ]);
    const token = accessToken(sdkOAuth);
    expect(decodeJwt(token)).toMatchObject({
      iss: peer.issuer,
      aud: peer.url,
      sub: 'alice',
      scope: 'tools:read',
      client_id: peer.received.tokenRequests[0]?.clientId,
    });
    expect(sdkOAuth.tokens()?.refresh_token).toBeTruthy();

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(TOOLS);
    expect(await client.callTool({ name: 'echo', arguments: { text: 'héllo' } })).toMatchObject({
      content: [{ type: 'text', text: 'héllo' }],
    });
    expect(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })).toMatchObject({
      structuredContent: { sum: 42 },
    });
    expect(await whoami(client)).toMatchObject({ sub: 'alice', scopes: ['tools:read'] });
    const prompt = await client.getPrompt({ name: 'greeting', arguments: { name: 'Bob' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Say hello to Bob.' });
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toEqual(['demo://tools/readme']);
    const readme = await client.readResource({ uri: 'demo://tools/readme' });
    expect(readme.contents[0]).toMatchObject({ uri: 'demo://tools/readme', mimeType: 'text/plain' });

    // Every MCP request carried the user's token, and the log says so.
    const mcpRequests = peer.received.requests.filter((r) => r.server === 'mcp' && r.path === '/mcp');
    expect(mcpRequests.length).toBeGreaterThan(5);
    expect(new Set(mcpRequests.map((r) => r.authorization))).toEqual(new Set([`Bearer ${token}`]));
    expect(new Set(peer.received.bearerTokens)).toEqual(new Set([token]));
    expect(mcpRequests.flatMap((r) => r.rpcMethods ?? [])).toContain('tools/call');
    expect(peer.received.serverErrors).toEqual([]);
  });

  it('answers 401 with a challenge naming its metadata, and invalid_token for a bad token', async () => {
    const peer = await startMcpPeer();
    const origin = new URL(peer.url).origin;

    const anonymous = await rpc(peer.url, undefined, toolsList);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${origin}${PRM_AT_PATH}", scope="tools:read"`,
    );
    const forged = await rpc(peer.url, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.', toolsList);
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toMatch(
      /^Bearer error="invalid_token", resource_metadata=/,
    );

    const prm = await (await fetch(`${origin}${PRM_AT_PATH}`)).json();
    expect(prm).toMatchObject({
      resource: peer.url,
      authorization_servers: [peer.issuer],
      scopes_supported: ['tools:read', 'tools:admin'],
    });
    const as = await (await fetch(`${peer.issuer}/.well-known/oauth-authorization-server`)).json();
    expect(as).toMatchObject({
      issuer: peer.issuer,
      authorization_endpoint: `${peer.issuer}/authorize`,
      token_endpoint: `${peer.issuer}/token`,
      registration_endpoint: `${peer.issuer}/register`,
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(as.scopes_supported).toEqual(
      expect.arrayContaining(['offline_access', 'tools:read', 'tools:admin']),
    );
    expect(as.client_id_metadata_document_supported).toBeUndefined();
  });

  it('advertisedResource makes its metadata name another resource', async () => {
    const peer = await startMcpPeer({ advertisedResource: 'http://127.0.0.1:1/elsewhere' });
    const prm = await (await fetch(`${new URL(peer.url).origin}${PRM_AT_PATH}`)).json();
    expect(prm.resource).toBe('http://127.0.0.1:1/elsewhere');
    expect(peer.url).not.toBe(prm.resource);
  });

  it('lets a 3-second access token expire into 401 invalid_token; the SDK client refreshes with the resource', async () => {
    const peer = await startMcpPeer({ accessTokenTtlSeconds: 3 });
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    const first = accessToken(sdkOAuth);
    const { exp = 0, iat = 0 } = decodeJwt(first);
    expect(exp - iat).toBe(3);
    expect(await whoami(client)).toMatchObject({ sub: 'alice' });

    await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
    const expired = await rpc(peer.url, first, toolsList);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await expired.json()).toMatchObject({ error_description: 'the access token expired' });

    expect(await whoami(client)).toMatchObject({ sub: 'alice' });
    const second = accessToken(sdkOAuth);
    expect(second).not.toBe(first);
    expect(decodeJwt(second)).toMatchObject({ aud: peer.url, sub: 'alice' });
    expect(peer.received.tokenRequests.map((r) => [r.grantType, r.resource, r.status])).toEqual([
      ['authorization_code', peer.url, 200],
      ['refresh_token', peer.url, 200],
    ]);
    expect(peer.received.bearerTokens).toContain(first);
    expect(peer.received.bearerTokens.at(-1)).toBe(second);
  });

  it('steps up: admin_op without tools:admin is a 403 insufficient_scope naming both scopes', async () => {
    const peer = await startMcpPeer();
    const origin = new URL(peer.url).origin;
    const agent = new UserAgent();
    const reader = new TestOAuthClient({ agent });
    await authorizeMcpClient(peer.url, reader, 'tools:read');
    const callAdmin = {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'admin_op', arguments: {} },
    };

    const refused = await rpc(peer.url, accessToken(reader), callAdmin);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toBe(
      `Bearer error="insufficient_scope", resource_metadata="${origin}${PRM_AT_PATH}", scope="tools:read tools:admin"`,
    );

    const admin = new TestOAuthClient({ agent }); // same browser: signed in already, consents again
    const { client } = await connectMcpClient(peer.url, { oauth: admin, scope: 'tools:read tools:admin' });
    expect(decodeJwt(accessToken(admin)).scope).toBe('tools:read tools:admin');
    expect(await client.callTool({ name: 'admin_op', arguments: {} })).toMatchObject({
      content: [{ type: 'text', text: 'admin operation done for alice' }],
    });
  });

  it('without stepUp, admin_op answers a tool error instead of HTTP 403', async () => {
    const peer = await startMcpPeer({ stepUp: false });
    const { client } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    expect(await client.callTool({ name: 'admin_op', arguments: {} })).toMatchObject({
      isError: true,
      content: [{ type: 'text', text: 'admin_op needs the tools:admin scope' }],
    });
  });

  it("keeps a session to the user who opened it: bob's token cannot use alice's session", async () => {
    const peer = await startMcpPeer();
    const { transport } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    const bob = new TestOAuthClient({ login: 'bob' });
    await authorizeMcpClient(peer.url, bob, 'tools:read');

    const hijack = await rpc(peer.url, accessToken(bob), toolsList, transport.sessionId);
    expect(hijack.status).toBe(404);
    const noSession = await rpc(peer.url, accessToken(bob), toolsList);
    expect(noSession.status).toBe(400);
    const bobsClient = await clientWithToken(peer.url, accessToken(bob));
    expect(await whoami(bobsClient)).toMatchObject({ sub: 'bob' });
    expect(peer.sessionCount()).toBe(2);
  });
});

describe('MCP test server: switches for the client under test', () => {
  it('with refreshTokens "offline_access", only an authorization asking for it gets a refresh token', async () => {
    const peer = await startMcpPeer({ refreshTokens: 'offline_access' });
    const agent = new UserAgent();
    const online = new TestOAuthClient({ agent });
    await authorizeMcpClient(peer.url, online, 'tools:read');
    expect(online.tokens()?.refresh_token).toBeUndefined();
    const offline = new TestOAuthClient({ agent });
    await authorizeMcpClient(peer.url, offline, 'tools:read offline_access');
    expect(offline.tokens()?.refresh_token).toBeTruthy();
    expect(decodeJwt(accessToken(offline))).toMatchObject({ aud: peer.url, scope: 'tools:read' });
  });

  it('dropRegistrations forgets registered clients: their next token request is invalid_client', async () => {
    const peer = await startMcpPeer();
    const registered = new TestOAuthClient();
    await authorizeMcpClient(peer.url, registered, 'tools:read');
    const clientId = registered.clientInformation()?.client_id ?? '';
    const refresh = () =>
      fetch(`${peer.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: registered.tokens()?.refresh_token ?? '',
          client_id: clientId,
          resource: peer.url,
        }),
      });
    expect(peer.dropRegistrations()).toBe(1);
    const refused = await refresh();
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('failNextWithUnauthorized refuses a valid token once: the SDK client refreshes and retries', async () => {
    const peer = await startMcpPeer();
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    const before = accessToken(sdkOAuth);
    await standaloneStreamOpen(peer); // so the refusal meets the call, not the client's GET
    peer.failNextWithUnauthorized(1);
    expect(await whoami(client)).toMatchObject({ sub: 'alice' });
    expect(accessToken(sdkOAuth)).not.toBe(before);
    expect(peer.received.tokenRequests.map((r) => r.grantType)).toEqual([
      'authorization_code',
      'refresh_token',
    ]);
    const refusedOnce = peer.received.requests.filter((r) => r.path === '/mcp' && r.status === 401);
    expect(refusedOnce).toHaveLength(1);
    expect(refusedOnce[0]?.authorization).toBe(`Bearer ${before}`);
  });

  it('hang_up cuts the stream mid-call; the session keeps serving', async () => {
    const peer = await startMcpPeer();
    const { client } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    await expect(
      client.callTool({ name: 'hang_up', arguments: {} }, undefined, { timeout: 1000 }),
    ).rejects.toThrow();
    expect(await client.callTool({ name: 'echo', arguments: { text: 'still here' } })).toMatchObject({
      content: [{ type: 'text', text: 'still here' }],
    });
  });

  it('answers POSTs with an SSE stream by default and with JSON when jsonResponse is set', async () => {
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    };
    for (const [options, contentType] of [
      [{}, 'text/event-stream'],
      [{ jsonResponse: true }, 'application/json'],
    ] as const) {
      const peer = await startMcpPeer(options);
      const oauth = new TestOAuthClient();
      await authorizeMcpClient(peer.url, oauth, 'tools:read');
      const response = await rpc(peer.url, accessToken(oauth), initialize);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain(contentType);
      expect(response.headers.get('mcp-session-id')).toBeTruthy();
      expect(await response.text()).toContain('"serverInfo"');
    }
  });
});

describe('MCP test server: the session', () => {
  it('passes elicitation to the client, reports progress, honours cancellation and announces tool changes', async () => {
    const peer = await startMcpPeer();
    const { client } = await connectMcpClient(peer.url, {
      scope: 'tools:read',
      clientOptions: { capabilities: { elicitation: { form: {} } } },
    });
    client.setRequestHandler(ElicitRequestSchema, async (request) => ({
      action: 'accept',
      content: { answer: `yes to "${request.params.message}"` },
    }));
    expect(await client.callTool({ name: 'ask', arguments: { question: 'Proceed?' } })).toMatchObject({
      content: [{ type: 'text', text: 'yes to "Proceed?"' }],
    });

    const progress: Progress[] = [];
    const done = await client.callTool({ name: 'slow', arguments: { steps: 3, intervalMs: 20 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(done).toMatchObject({ content: [{ type: 'text', text: 'done after 3 steps' }] });
    expect(progress.map((p) => [p.progress, p.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);

    const controller = new AbortController();
    const cancelled = client.callTool({ name: 'slow', arguments: { steps: 50, intervalMs: 50 } }, undefined, {
      signal: controller.signal,
      onprogress: () => controller.abort(),
    });
    await expect(cancelled).rejects.toThrow();
    await vi.waitFor(() => expect(peer.received.cancelledCalls).toHaveLength(1), { timeout: 2000 });

    // Server-initiated notifications travel on the standalone SSE stream the client opened with GET.
    await standaloneStreamOpen(peer);
    const listChanged = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
    );
    peer.setBonusTool(true);
    await listChanged;
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('bonus');
  });
});

interface MetadataCase {
  name: string;
  options: StartMcpServerOptions;
  /** Paths at the MCP origin that serve protected-resource metadata. */
  resourceMetadata: string[];
  /** Paths at the issuer's origin that serve authorization-server metadata. */
  authServerMetadata: string[];
  /** The 401 challenge; `{prm}` stands for the MCP origin. */
  challenge: string;
}

const AS_CANDIDATES = [
  '/.well-known/oauth-authorization-server',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server/tenant1',
  '/.well-known/openid-configuration/tenant1',
  '/tenant1/.well-known/openid-configuration',
];
const AT_ROOT = AS_CANDIDATES.slice(0, 2);
const WITH_PATH = AS_CANDIDATES.slice(2);

const metadataCases: MetadataCase[] = [
  {
    name: 'path (default)',
    options: {},
    resourceMetadata: [PRM_AT_PATH],
    authServerMetadata: AT_ROOT,
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_PATH}", scope="tools:read"`,
  },
  {
    name: 'root-only',
    options: { metadata: 'root-only' },
    resourceMetadata: [PRM_AT_ROOT],
    authServerMetadata: AT_ROOT,
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_ROOT}", scope="tools:read"`,
  },
  {
    name: 'both',
    options: { metadata: 'both' },
    resourceMetadata: [PRM_AT_PATH, PRM_AT_ROOT],
    authServerMetadata: AT_ROOT,
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_PATH}", scope="tools:read"`,
  },
  {
    name: 'root-only with a bare challenge',
    options: { metadata: 'root-only', bareChallenge: true },
    resourceMetadata: [PRM_AT_ROOT],
    authServerMetadata: AT_ROOT,
    challenge: 'Bearer',
  },
  {
    name: 'none (2025-03-26: metadata at the origin)',
    options: { metadata: 'none' },
    resourceMetadata: [],
    authServerMetadata: AT_ROOT,
    challenge: 'Bearer',
  },
  {
    name: 'none, no metadata at all (default endpoints)',
    options: { metadata: 'none', authServerMetadata: false },
    resourceMetadata: [],
    authServerMetadata: [],
    challenge: 'Bearer',
  },
  {
    name: 'issuer with a path',
    options: { issuerPath: '/tenant1' },
    resourceMetadata: [PRM_AT_PATH],
    authServerMetadata: WITH_PATH,
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_PATH}", scope="tools:read"`,
  },
  {
    name: 'OIDC only',
    options: { oidcOnly: true },
    resourceMetadata: [PRM_AT_PATH],
    authServerMetadata: ['/.well-known/openid-configuration'],
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_PATH}", scope="tools:read"`,
  },
  {
    name: 'OIDC only with an issuer path (path-appended only)',
    options: { oidcOnly: true, issuerPath: '/tenant1' },
    resourceMetadata: [PRM_AT_PATH],
    authServerMetadata: ['/tenant1/.well-known/openid-configuration'],
    challenge: `Bearer resource_metadata="{origin}${PRM_AT_PATH}", scope="tools:read"`,
  },
];

describe('MCP test server: where each variant keeps its metadata', () => {
  it.each(metadataCases)('$name', async ({ options, resourceMetadata, authServerMetadata, challenge }) => {
    const peer = await startMcpPeer(options);
    const origin = new URL(peer.url).origin;
    const issuerOrigin = new URL(peer.issuer).origin;
    if (options.metadata === 'none') expect(issuerOrigin).toBe(origin);

    const anonymous = await rpc(peer.url, undefined, toolsList);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(challenge.replace('{origin}', origin));

    for (const path of [PRM_AT_PATH, PRM_AT_ROOT]) {
      const response = await fetch(`${origin}${path}`);
      expect([path, response.status]).toEqual([path, resourceMetadata.includes(path) ? 200 : 404]);
      if (response.status === 200) {
        expect(await response.json()).toMatchObject({
          resource: peer.url,
          authorization_servers: [peer.issuer],
        });
      }
    }
    for (const path of AS_CANDIDATES) {
      const response = await fetch(`${issuerOrigin}${path}`);
      expect([path, response.status]).toEqual([path, authServerMetadata.includes(path) ? 200 : 404]);
      if (response.status === 200) {
        const metadata = await response.json();
        expect(metadata.issuer).toBe(peer.issuer);
        expect(metadata.token_endpoint).toBe(`${peer.issuer}/token`);
        expect(metadata.registration_endpoint).toBe(`${peer.issuer}/register`);
      }
    }
    // The endpoints are where the metadata says, and for a 2025-03-26 server where defaults put them.
    const registration = await fetch(`${peer.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [testRedirectUri], token_endpoint_auth_method: 'none' }),
    });
    expect(registration.status).toBe(201);
  });
});

describe('MCP test server: variants, end to end with the MCP SDK client', () => {
  it('an issuer with a path and only path-appended OIDC metadata', async () => {
    const peer = await startMcpPeer({ issuerPath: '/tenant1', oidcOnly: true });
    expect(peer.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/tenant1$/);
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    expect(sdkOAuth.authorizationUrls[0]?.href.startsWith(`${peer.issuer}/authorize?`)).toBe(true);
    expect(sdkOAuth.authorizationUrls[0]?.searchParams.get('resource')).toBe(peer.url);
    expect(decodeJwt(accessToken(sdkOAuth))).toMatchObject({ iss: peer.issuer, aud: peer.url });
    expect(await whoami(client)).toMatchObject({ sub: 'alice' });
    const fetched = peer.received.requests.filter((r) => r.path.includes('/.well-known/')).map((r) => r.path);
    expect(fetched).toContain('/tenant1/.well-known/openid-configuration');
  });

  it('a 2025-03-26 server: no metadata, default endpoints at the origin, no resource sent', async () => {
    const peer = await startMcpPeer({ metadata: 'none', authServerMetadata: false });
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    const origin = new URL(peer.url).origin;
    expect(sdkOAuth.authorizationUrls[0]?.href.startsWith(`${origin}/authorize?`)).toBe(true);
    expect(peer.received.registrations).toHaveLength(1);
    expect(peer.received.authorizationRequests[0]?.resource).toBeUndefined();
    expect(decodeJwt(accessToken(sdkOAuth)).aud).toBe(peer.url); // the default resource
    expect(await whoami(client)).toMatchObject({ sub: 'alice' });
  });

  it('an authorization server that ignores resource: tokens carry its own audience', async () => {
    const peer = await startMcpPeer({ ignoreResource: true });
    const { client, oauth: sdkOAuth } = await connectMcpClient(peer.url, { scope: 'tools:read' });
    expect(peer.received.authorizationRequests[0]?.resource).toBe(peer.url);
    expect(decodeJwt(accessToken(sdkOAuth)).aud).toBe(peer.audience);
    expect(peer.audience).not.toBe(peer.url);
    expect(await whoami(client)).toMatchObject({ sub: 'alice' });
  });

  it('no registration: a pre-registered confidential client, its secret sent with HTTP Basic', async () => {
    const peer = await startMcpPeer({
      registration: false,
      client: { redirectUris: [testRedirectUri], tokenEndpointAuthMethod: 'client_secret_basic' },
    });
    const metadata = await (await fetch(`${peer.issuer}/.well-known/oauth-authorization-server`)).json();
    expect(metadata.registration_endpoint).toBeUndefined();
    const refused = await fetch(`${peer.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [testRedirectUri] }),
    });
    expect(refused.status).toBe(404);

    const { clientId, clientSecret } = peer.client ?? {};
    expect(clientId).toBeTruthy();
    expect(clientSecret).toBeTruthy();
    const preRegistered = new TestOAuthClient({
      client: { client_id: clientId ?? '', client_secret: clientSecret ?? '' },
    });
    const { client } = await connectMcpClient(peer.url, { oauth: preRegistered, scope: 'tools:read' });
    expect(await whoami(client)).toMatchObject({ sub: 'alice', clientId });
    const tokenRequest = peer.received.requests.find((r) => r.path === '/token');
    const basic = Buffer.from(
      `${encodeURIComponent(clientId ?? '')}:${encodeURIComponent(clientSecret ?? '')}`,
    );
    expect(tokenRequest?.authorization).toBe(`Basic ${basic.toString('base64')}`);
  });

  it('CIMD: a URL client_id whose metadata document the authorization server fetches and checks', async () => {
    const peer = await startMcpPeer({ cimd: true });
    const document = await serveClientMetadata((url) => ({
      client_id: url,
      client_name: 'CIMD test client',
      redirect_uris: [testRedirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }));
    const as = await discover(peer.issuer);
    expect(as.client_id_metadata_document_supported).toBe(true);

    const tokens = await authorizeWithOauth4webapi(as, document.url, peer.url, 'carol');
    expect(decodeJwt(tokens.access_token)).toMatchObject({
      aud: peer.url,
      sub: 'carol',
      client_id: document.url,
    });
    expect(peer.received.cimdFetches.length).toBeGreaterThan(0);
    expect(peer.received.cimdFetches.every((f) => f.url === document.url && f.problem === undefined)).toBe(
      true,
    );
    expect(peer.received.registrations).toEqual([]);
    expect(await whoami(await clientWithToken(peer.url, tokens.access_token))).toMatchObject({
      sub: 'carol',
    });

    // A document naming another client_id is refused: the authorization request fails.
    const impostor = await serveClientMetadata(() => ({
      client_id: 'http://127.0.0.1:1/other.json',
      redirect_uris: [testRedirectUri],
    }));
    const refused = await new UserAgent().get(authorizationUrl(as, impostor.url, peer.url, 'x'.repeat(43)));
    expect(refused.status).toBe(400);
    expect(peer.received.cimdFetches.at(-1)).toEqual({
      url: impostor.url,
      problem: 'the document names another client_id',
    });
  });

  it('without cimd, a URL client_id is an unknown client', async () => {
    const peer = await startMcpPeer();
    const document = await serveClientMetadata((url) => ({
      client_id: url,
      redirect_uris: [testRedirectUri],
    }));
    const as = await discover(peer.issuer);
    const refused = await new UserAgent().get(authorizationUrl(as, document.url, peer.url, 'x'.repeat(43)));
    expect(refused.status).toBe(400);
    expect(peer.received.cimdFetches).toEqual([]);
    expect(document.hits()).toBe(0);
  });
});

async function serveClientMetadata(build: (url: string) => object): Promise<{ url: string; hits(): number }> {
  let hits = 0;
  let url = '';
  const server = createServer((_req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(build(url)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/client-metadata.json`;
  closers.push(
    () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url, hits: () => hits };
}

async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const issuerUrl = new URL(issuer);
  const response = await oauth.discoveryRequest(issuerUrl, {
    algorithm: 'oauth2',
    [oauth.allowInsecureRequests]: true,
  });
  return oauth.processDiscoveryResponse(issuerUrl, response);
}

function authorizationUrl(
  as: oauth.AuthorizationServer,
  clientId: string,
  resource: string,
  challenge: string,
) {
  const url = new URL(as.authorization_endpoint ?? '');
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: testRedirectUri,
    response_type: 'code',
    scope: 'tools:read',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource,
    state: 'state-1',
  }).toString();
  return url;
}

/** Authorization code + PKCE for a public client, with oauth4webapi and a scripted browser. */
async function authorizeWithOauth4webapi(
  as: oauth.AuthorizationServer,
  clientId: string,
  resource: string,
  login: string,
): Promise<oauth.TokenEndpointResponse> {
  const client: oauth.Client = { client_id: clientId };
  const verifier = oauth.generateRandomCodeVerifier();
  const start = authorizationUrl(as, clientId, resource, await oauth.calculatePKCECodeChallenge(verifier));
  const callback = await new UserAgent().signInAtOidcProvider(start, login);
  const params = oauth.validateAuthResponse(as, client, callback, 'state-1');
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    testRedirectUri,
    verifier,
    { additionalParameters: { resource }, [oauth.allowInsecureRequests]: true },
  );
  return oauth.processAuthorizationCodeResponse(as, client, response);
}
