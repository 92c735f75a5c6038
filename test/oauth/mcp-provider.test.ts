import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { discoverMcpAuthorization } from '../../src/oauth/mcp/discovery.js';
import { McpDiscoveryError } from '../../src/oauth/mcp/errors.js';
import { AuthorizationDeniedError, AuthorizationResponseInvalidError } from '../../src/oauth/oauth-client.js';
import { createOutboundFetch, type OutboundPolicy } from '../../src/oauth/outbound.js';
import { createMcpClient, type McpServerSettings, mcpScopes } from '../../src/oauth/providers/mcp.js';
import type { Store } from '../../src/store/database.js';
import { McpRegistrations } from '../../src/store/repos/mcp-registrations.js';
import { createTestStore, type TestDatabase } from '../support/databases.js';
import { asMetadata, json, type Site, type SiteRequest, startSite, unauthorized } from './mcp-servers.js';

const policy: OutboundPolicy = { allow: ['127.0.0.1/32'], timeoutMs: 2_000 };
const fetch = createOutboundFetch(policy);
const clock = { now: () => Date.now() };
const redirectUri = 'https://nunq.example/oauth/callback';

describe('the OAuth client of an MCP server', () => {
  let store: Store;
  let database: TestDatabase;
  let registrations: McpRegistrations;
  let rs: Site;
  let as: Site;

  beforeAll(async () => {
    ({ store, database } = await createTestStore('sqlite'));
    registrations = new McpRegistrations(
      store.db,
      new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: generateKey() }] })),
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });
  afterEach(async () => {
    await rs?.close();
    await as?.close();
    await store.db.deleteFrom('mcp_registrations').execute();
  });

  /** An MCP server and its authorization server with dynamic registration and a token endpoint. */
  async function start(
    options: { as?: Record<string, unknown>; challenge?: string; prm?: Record<string, unknown> } = {},
  ) {
    rs = await startSite();
    as = await startSite();
    rs.route('/mcp', unauthorized(options.challenge ?? 'Bearer scope="tools:call"'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      json({ resource: `${rs.url}/mcp`, authorization_servers: [as.url], ...options.prm }),
    );
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url, options.as)));
    as.route('/register', (req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...JSON.parse(req.body),
          client_id: 'dcr-client',
          client_secret: 'dcr-secret',
          client_secret_expires_at: 0,
        }),
      );
    });
    as.route(
      '/token',
      json({
        access_token: 'at-1',
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: 'rt-1',
        scope: 'tools:call',
      }),
    );
  }

  const build = (settings: Partial<McpServerSettings> = {}) =>
    createMcpClient({
      integrationId: 'tracker',
      settings: { url: `${rs.url}/mcp`, ...settings },
      credentials: {},
      fetch,
      policy,
      clock,
      registrations,
      publicUrl: 'http://127.0.0.1:9',
      redirectUri,
    });

  const tokenRequests = () => as.received.filter((r) => r.url === '/token');
  const form = (r: SiteRequest) => new URLSearchParams(r.body);

  async function authorizeAndExchange(client: Awaited<ReturnType<typeof build>>['client'], scopes: string[]) {
    const url = await client.authorizationUrl({
      redirectUri,
      scopes,
      state: 'state-1',
      codeVerifier: 'v'.repeat(43),
      nonce: null,
    });
    const tokens = await client.exchangeCode({
      callbackUrl: new URL(`${redirectUri}?code=code-1&state=state-1`),
      state: 'state-1',
      redirectUri,
      codeVerifier: 'v'.repeat(43),
      nonce: null,
      requestedScopes: scopes,
    });
    return { url, tokens };
  }

  it('sends the RFC 8707 resource in the authorization, token and refresh requests, with PKCE S256', async () => {
    await start({ as: { scopes_supported: ['tools:call', 'offline_access'] } });
    const { client, discovery, registration } = await build();
    expect(registration).toBe('dynamic');
    const scopes = client.scopesFor([]);
    expect(scopes).toEqual(['tools:call', 'offline_access']);
    const { url, tokens } = await authorizeAndExchange(client, scopes);
    expect(url.origin + url.pathname).toBe(`${as.url}/authorize`);
    expect(url.searchParams.get('resource')).toBe(`${rs.url}/mcp`);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('client_id')).toBe('dcr-client');
    expect(url.searchParams.get('scope')).toBe('tools:call offline_access');
    expect(tokens.accessToken).toBe('at-1');
    expect(tokens.account).toEqual({}); // no ID token: no account, as for oauth2 providers without userinfo
    await client.refresh('rt-1', scopes);
    const [exchange, refresh] = tokenRequests();
    expect(form(exchange!).get('grant_type')).toBe('authorization_code');
    expect(form(exchange!).get('resource')).toBe(discovery.resource);
    expect(form(refresh!).get('grant_type')).toBe('refresh_token');
    expect(form(refresh!).get('resource')).toBe(discovery.resource);
    // The registered client authenticates with client_secret_basic.
    const basic = Buffer.from(exchange!.headers.authorization!.replace(/^Basic /, ''), 'base64').toString();
    expect(basic.split(':').map(decodeURIComponent)).toEqual(['dcr-client', 'dcr-secret']); // RFC 6749 §2.3.1
  });

  it('sends no resource anywhere with resource: omit', async () => {
    await start();
    const { client } = await build({ resource: 'omit' });
    const { url } = await authorizeAndExchange(client, ['tools:call']);
    await client.refresh('rt-1', ['tools:call']);
    expect(url.searchParams.has('resource')).toBe(false);
    expect(tokenRequests()).toHaveLength(2);
    for (const r of tokenRequests()) expect(form(r).has('resource')).toBe(false);
  });

  it('refuses an authorization server that does not list S256, before registering there', async () => {
    await start({ as: { code_challenge_methods_supported: undefined } });
    const missing = (await build().catch((e: unknown) => e)) as McpDiscoveryError;
    expect(missing).toBeInstanceOf(McpDiscoveryError);
    expect(missing.problem).toBe('pkce_unsupported');
    expect(missing.message).toContain('assume-s256');
    as.route(
      '/.well-known/oauth-authorization-server',
      json(asMetadata(as.url, { code_challenge_methods_supported: ['plain'] })),
    );
    expect(((await build().catch((e: unknown) => e)) as McpDiscoveryError).problem).toBe('pkce_unsupported');
    expect(as.received.filter((r) => r.url === '/register')).toEqual([]);
    // The admin vouches for it: S256 is used all the same.
    const { client } = await build({ pkce: 'assume-s256' });
    const url = await client.authorizationUrl({
      redirectUri,
      scopes: [],
      state: 's',
      codeVerifier: 'v'.repeat(43),
      nonce: null,
    });
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
  });

  it('asks for the configured scopes, else the challenged ones, else scopes_supported, else none', async () => {
    await start({ prm: { scopes_supported: ['a', 'b'] } });
    const { client, discovery } = await build();
    expect(client.scopesFor(['x'])).toEqual(['x']);
    expect(client.scopesFor([])).toEqual(['tools:call']);
    expect(mcpScopes([], { ...discovery, challengeScopes: undefined })).toEqual(['a', 'b']);
    const none = { ...discovery, challengeScopes: undefined, scopesSupported: undefined };
    expect(mcpScopes([], none)).toEqual([]);
    // offline_access only when the authorization server lists it.
    expect(client.scopesFor(['x'])).not.toContain('offline_access');
    const listed = {
      ...none,
      authorizationServer: { ...none.authorizationServer, scopes_supported: ['offline_access'] },
    };
    expect(mcpScopes([], listed)).toEqual(['offline_access']);
    // No scopes: no scope parameter at all.
    const url = await client.authorizationUrl({
      redirectUri,
      scopes: [],
      state: 's',
      codeVerifier: 'v'.repeat(43),
      nonce: null,
    });
    expect(url.searchParams.has('scope')).toBe(false);
  });

  it('checks RFC 9207 iss: required when advertised, exact when present, its error text never used', async () => {
    await start({ as: { authorization_response_iss_parameter_supported: true } });
    const { client } = await build();
    const exchange = (query: string) =>
      client
        .exchangeCode({
          callbackUrl: new URL(`${redirectUri}?${query}`),
          state: 's',
          redirectUri,
          codeVerifier: 'v'.repeat(43),
          nonce: null,
          requestedScopes: [],
        })
        .catch((e: unknown) => e);
    const iss = encodeURIComponent(as.url);
    expect(await exchange('code=c&state=s')).toBeInstanceOf(AuthorizationResponseInvalidError);
    expect(await exchange(`code=c&state=s&iss=${encodeURIComponent(`${as.url}/`)}`)).toBeInstanceOf(
      AuthorizationResponseInvalidError,
    );
    const mismatch = await exchange(
      `error=access_denied&error_description=SECRET-DESCRIPTION&state=s&iss=${encodeURIComponent('https://evil.example')}`,
    );
    expect(mismatch).toBeInstanceOf(AuthorizationResponseInvalidError);
    expect(mismatch).not.toBeInstanceOf(AuthorizationDeniedError);
    expect(inspect(mismatch, { depth: 10 })).not.toContain('SECRET-DESCRIPTION');
    expect(inspect(mismatch, { depth: 10 })).not.toContain('access_denied');
    expect(tokenRequests()).toEqual([]);
    // With the right iss, the error of the right server is what it is.
    const denied = await exchange(`error=access_denied&state=s&iss=${iss}`);
    expect(denied).toBeInstanceOf(AuthorizationDeniedError);
    const ok = await exchange(`code=c&state=s&iss=${iss}`);
    expect((ok as { accessToken: string }).accessToken).toBe('at-1');
  });

  it('compares a present iss exactly even when the server does not advertise it', async () => {
    await start();
    const { client } = await build();
    const result = await client
      .exchangeCode({
        callbackUrl: new URL(
          `${redirectUri}?code=c&state=s&iss=${encodeURIComponent('https://evil.example')}`,
        ),
        state: 's',
        redirectUri,
        codeVerifier: 'v'.repeat(43),
        nonce: null,
        requestedScopes: [],
      })
      .catch((e: unknown) => e);
    expect(result).toBeInstanceOf(AuthorizationResponseInvalidError);
    expect(tokenRequests()).toEqual([]);
  });

  it('uses a given discovery as it is, and a configured client without registering', async () => {
    await start();
    const discovery = await discoverMcpAuthorization(new URL(`${rs.url}/mcp`), { fetch, policy });
    const before = rs.received.length + as.received.length;
    const { client, registration } = await createMcpClient({
      integrationId: 'tracker',
      settings: { url: `${rs.url}/mcp`, clientId: 'configured', clientAuthMethod: 'client_secret_post' },
      credentials: { clientSecret: 'configured-secret' },
      fetch,
      policy,
      clock,
      registrations,
      publicUrl: 'https://nunq.example',
      redirectUri,
      discovery,
    });
    expect(registration).toBe('configured');
    expect(rs.received.length + as.received.length).toBe(before);
    await client.refresh('rt-1', []);
    const body = form(tokenRequests()[0]!);
    expect(body.get('client_id')).toBe('configured');
    expect(body.get('client_secret')).toBe('configured-secret');
  });
});
