import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  authorizationServerMetadataUrls,
  canonicalServerUri,
  discoverMcpAuthorization,
  parseMcpChallenge,
  protectedResourceMetadataUrls,
  resourceMatches,
} from '../../src/oauth/mcp/discovery.js';
import { McpDiscoveryError, type McpProblem } from '../../src/oauth/mcp/errors.js';
import { createOutboundFetch, type OutboundPolicy } from '../../src/oauth/outbound.js';
import {
  asMetadata,
  json,
  redirect,
  type Site,
  startSentinel,
  startSite,
  unauthorized,
} from './mcp-servers.js';

const policy: OutboundPolicy = { allow: ['127.0.0.1/32'], timeoutMs: 2_000 };
const deps = { fetch: createOutboundFetch(policy), policy };

/** The discovery's error, asserted to be a McpDiscoveryError with this problem. */
async function refusal(promise: Promise<unknown>, problem: McpProblem): Promise<McpDiscoveryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(McpDiscoveryError);
  expect((error as McpDiscoveryError).problem, (error as Error).message).toBe(problem);
  return error as McpDiscoveryError;
}

describe('MCP authorization discovery', () => {
  let rs: Site; // the MCP server (protected resource)
  let as: Site; // its authorization server
  let sentinel: Awaited<ReturnType<typeof startSentinel>>;
  const mcpUrl = () => new URL(`${rs.url}/mcp`);
  const prm = (extra: Record<string, unknown> = {}) =>
    json({ resource: `${rs.url}/mcp`, authorization_servers: [as.url], ...extra });

  beforeAll(async () => {
    sentinel = await startSentinel();
  });
  afterAll(async () => {
    await sentinel.close();
  });
  afterEach(async () => {
    await rs?.close();
    await as?.close();
    expect(sentinel.connections()).toBe(0);
  });
  const start = async () => {
    rs = await startSite();
    as = await startSite();
  };

  it('finishes the handshake and asks tools/list when initialize is let through, to learn the challenge', async () => {
    await start();
    rs.route('/mcp', (req, res) => {
      const rpc = req.body === '' ? {} : (JSON.parse(req.body) as { method?: string });
      if (req.method === 'DELETE') return res.writeHead(200).end();
      if (rpc.method === 'initialize') {
        return res
          .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'probe-session' })
          .end('{"jsonrpc":"2.0","id":1,"result":{}}');
      }
      if (rpc.method === 'notifications/initialized') return res.writeHead(202).end();
      res
        .writeHead(401, {
          'www-authenticate': `Bearer resource_metadata="${rs.url}/meta/prm", scope="mcp:basic"`,
        })
        .end();
    });
    rs.route('/meta/prm', prm({ scopes_supported: ['mcp:profile'] }));
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.challengeScopes).toEqual(['mcp:basic']);
    expect(found.resourceMetadataUrl).toBe(`${rs.url}/meta/prm`);
    const mcpRequests = rs.received.filter((r) => r.url === '/mcp');
    expect(mcpRequests.map((r) => r.method)).toEqual(['POST', 'POST', 'POST', 'DELETE']);
    // The probe session continues the one initialize opened, and never carries a token.
    expect(mcpRequests.slice(1).every((r) => r.headers['mcp-session-id'] === 'probe-session')).toBe(true);
    expect(mcpRequests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('follows the resource_metadata hint of the 401 challenge, then the issuer metadata', async () => {
    await start();
    rs.route(
      '/mcp',
      unauthorized(`Bearer resource_metadata="${rs.url}/meta/prm", scope="files:read files:write"`),
    );
    rs.route('/meta/prm', prm({ scopes_supported: ['files:read', 'files:write', 'admin'] }));
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found).toMatchObject({
      serverUrl: `${rs.url}/mcp`,
      resource: `${rs.url}/mcp`,
      legacy: false,
      challengeScopes: ['files:read', 'files:write'],
      scopesSupported: ['files:read', 'files:write', 'admin'],
      resourceMetadataUrl: `${rs.url}/meta/prm`,
      authorizationServerMetadataUrl: `${as.url}/.well-known/oauth-authorization-server`,
    });
    expect(found.authorizationServer.issuer).toBe(as.url);
    expect(found.authorizationServer.token_endpoint).toBe(`${as.url}/token`);
    // One probe (an unauthenticated initialize), then the hinted document only.
    expect(rs.received[0]).toMatchObject({ method: 'POST' });
    expect(rs.received[0]!.headers.authorization).toBeUndefined();
    expect(JSON.parse(rs.received[0]!.body)).toMatchObject({ jsonrpc: '2.0', method: 'initialize' });
    expect(rs.paths()).toEqual(['/mcp', '/meta/prm']);
  });

  it('finds the metadata at the path-inserted well-known URL after a bare Bearer challenge', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.resourceMetadataUrl).toBe(`${rs.url}/.well-known/oauth-protected-resource/mcp`);
    expect(found.challengeScopes).toBeUndefined();
    expect(rs.paths()).toEqual(['/mcp', '/.well-known/oauth-protected-resource/mcp']);
  });

  it('falls back to the root well-known URL when the path-inserted one is missing', async () => {
    await start();
    rs.route('/mcp', unauthorized());
    rs.route(
      '/.well-known/oauth-protected-resource',
      json({ resource: rs.url, authorization_servers: [as.url] }),
    );
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    // A same-origin path prefix of the server URL may speak for it; it is what RFC 8707 requests carry.
    expect(found.resource).toBe(rs.url);
    expect(rs.paths()).toEqual([
      '/mcp',
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
    ]);
  });

  it('finds the metadata of an issuer with a path at the RFC 8414 path-inserted URL', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      prm({ authorization_servers: [`${as.url}/tenant1`] }),
    );
    as.route('/.well-known/oauth-authorization-server/tenant1', json(asMetadata(`${as.url}/tenant1`)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.authorizationServer.issuer).toBe(`${as.url}/tenant1`);
    expect(as.paths()).toEqual(['/.well-known/oauth-authorization-server/tenant1']);
  });

  it('uses OpenID Connect metadata when the issuer publishes no OAuth metadata', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route('/.well-known/openid-configuration', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.authorizationServerMetadataUrl).toBe(`${as.url}/.well-known/openid-configuration`);
    expect(as.paths()).toEqual([
      '/.well-known/oauth-authorization-server',
      '/.well-known/openid-configuration',
    ]);
  });

  it('tries the three locations of an issuer with a path in order, the OIDC path-appended one last', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      prm({ authorization_servers: [`${as.url}/tenant1`] }),
    );
    as.route('/tenant1/.well-known/openid-configuration', json(asMetadata(`${as.url}/tenant1`)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.authorizationServer.issuer).toBe(`${as.url}/tenant1`);
    expect(as.paths()).toEqual([
      '/.well-known/oauth-authorization-server/tenant1',
      '/.well-known/openid-configuration/tenant1',
      '/tenant1/.well-known/openid-configuration',
    ]);
  });

  it('treats a server without protected-resource metadata as 2025-03-26: metadata at its origin', async () => {
    await start();
    rs.route('/mcp', unauthorized());
    rs.route('/.well-known/oauth-authorization-server', json(asMetadata(rs.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found).toMatchObject({ legacy: true, resource: `${rs.url}/mcp`, serverUrl: `${rs.url}/mcp` });
    expect(found.resourceMetadataUrl).toBeUndefined();
    expect(found.authorizationServer.issuer).toBe(rs.url);
    expect(found.authorizationServerMetadataUrl).toBe(`${rs.url}/.well-known/oauth-authorization-server`);
  });

  it('uses /authorize, /token and /register at the origin of a 2025-03-26 server without any metadata', async () => {
    await start();
    rs.route('/mcp', unauthorized());
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.legacy).toBe(true);
    expect(found.authorizationServer).toMatchObject({
      issuer: rs.url,
      authorization_endpoint: `${rs.url}/authorize`,
      token_endpoint: `${rs.url}/token`,
      registration_endpoint: `${rs.url}/register`,
    });
    expect(found.authorizationServerMetadataUrl).toBeUndefined();
  });

  it('does not wait for the body of a server that answers the probe with an endless event stream', async () => {
    await start();
    rs.route('/mcp', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n'); // and never ends
    });
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const startedAt = Date.now();
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.legacy).toBe(false);
    expect(Date.now() - startedAt).toBeLessThan(1_500);
  });

  it('sends no probe when given the challenge already received', async () => {
    await start();
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps, { challenge: 'Bearer scope="a b"' });
    expect(found.challengeScopes).toEqual(['a', 'b']);
    expect(rs.received.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('refuses metadata for another resource before contacting any authorization server', async () => {
    await start();
    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${rs.url}/prm"`));
    rs.route('/prm', json({ resource: `${rs.url}/other`, authorization_servers: [as.url] }));
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'resource_mismatch');
    expect(error.message).toContain(`${rs.url}/other`);
    expect(as.received).toEqual([]);
  });

  it('refuses metadata on another origin that claims the server', async () => {
    await start();
    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${as.url}/prm"`));
    as.route('/prm', json({ resource: `${as.url}/mcp`, authorization_servers: [as.url] }));
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'resource_mismatch');
    expect(as.paths()).toEqual(['/prm']);
  });

  it('refuses authorization-server metadata naming another issuer', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route('/.well-known/oauth-authorization-server', json(asMetadata('https://evil.example')));
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'issuer_mismatch');
    expect(error.url).toBe(`${as.url}/.well-known/oauth-authorization-server`);
  });

  it('refuses a malformed WWW-Authenticate header', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer resource_metadata="unterminated'));
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'challenge_malformed');
    expect(rs.paths()).toEqual(['/mcp']);
  });

  it('refuses protected-resource metadata that lists no authorization server', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', json({ resource: `${rs.url}/mcp` }));
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'no_authorization_server');
  });

  it('refuses metadata whose fields have the wrong types, naming the field', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', prm({ scopes_supported: 'files:read' }));
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'metadata_invalid');
    expect(error.message).toContain('scopes_supported');
  });

  it('refuses an authorization server at 127.0.0.2 without sending it anything', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      prm({ authorization_servers: [`http://127.0.0.2:${sentinel.port}`] }),
    );
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'address_refused');
    expect(sentinel.connections()).toBe(0);
  });

  it('refuses an authorization server at [::ffff:127.0.0.2] without sending it anything', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      prm({ authorization_servers: [`http://[::ffff:127.0.0.2]:${sentinel.port}`] }),
    );
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'address_refused');
    expect(sentinel.connections()).toBe(0);
  });

  it('refuses metadata hinted at the cloud metadata address 169.254.169.254 before connecting', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer resource_metadata="http://169.254.169.254/latest/meta-data"'));
    const startedAt = Date.now();
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'address_refused');
    expect(error.message).toContain('169.254.169.254');
    expect(Date.now() - startedAt).toBeLessThan(1_000); // refused, not timed out
  });

  it('refuses endpoints in authorization-server metadata that point at a private address', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route(
      '/.well-known/oauth-authorization-server',
      json(asMetadata(as.url, { token_endpoint: `http://127.0.0.2:${sentinel.port}/token` })),
    );
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'address_refused');
    expect(error.message).toContain('token_endpoint');
  });

  it('refuses plain http outside the allowed networks, and schemes other than http(s)', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route(
      '/.well-known/oauth-protected-resource/mcp',
      prm({ authorization_servers: ['http://as.example'] }),
    );
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'url_refused');
    expect(error.message).toContain('must use https');
    rs.route('/.well-known/oauth-protected-resource/mcp', prm());
    as.route(
      '/.well-known/oauth-authorization-server',
      json(asMetadata(as.url, { authorization_endpoint: 'javascript:alert(1)' })),
    );
    const scheme = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'url_refused');
    expect(scheme.message).toContain('authorization_endpoint');
  });

  it('refuses a redirect to a private address without following it', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', redirect(`http://127.0.0.2:${sentinel.port}/prm`));
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'address_refused');
    expect(sentinel.connections()).toBe(0);
  });

  it('follows up to three redirects, each checked, and refuses a loop and a fourth hop', async () => {
    await start();
    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${rs.url}/r1"`));
    rs.route('/r1', redirect(`${as.url}/r2`, 301));
    as.route('/r2', redirect(`${rs.url}/r3`, 307));
    rs.route('/r3', redirect('/prm', 308));
    rs.route('/prm', prm());
    as.route('/.well-known/oauth-authorization-server', json(asMetadata(as.url)));
    const found = await discoverMcpAuthorization(mcpUrl(), deps);
    expect(found.resourceMetadataUrl).toBe(`${rs.url}/r1`);

    rs.route('/r3', redirect('/r4'));
    rs.route('/r4', redirect('/prm'));
    const before = rs.received.length;
    const tooMany = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'redirect_refused');
    expect(tooMany.message).toContain('more than 3');
    // Three redirects followed (r1 → r2 on the other site → r3 → r4); the fourth's target never fetched.
    expect(rs.paths().slice(before)).toEqual(['/mcp', '/r1', '/r3', '/r4']);

    rs.route('/r3', redirect(`${rs.url}/r1`));
    const loop = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'redirect_refused');
    expect(loop.message).toContain('loop');
  });

  it('refuses a metadata document bigger than 256 KiB, announced or streamed', async () => {
    await start();
    const huge = JSON.stringify({ resource: `${rs.url}/mcp`, pad: 'x'.repeat(300 * 1024) });
    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${rs.url}/announced"`));
    rs.route('/announced', { status: 200, headers: { 'content-type': 'application/json' }, body: huge });
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'response_too_large');

    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${rs.url}/streamed"`));
    let written = 0;
    rs.route('/streamed', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length announced
      const chunk = 'x'.repeat(64 * 1024);
      const pump = () => {
        while (written < 10 * 1024 * 1024 && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'response_too_large');
    expect(written).toBeLessThan(10 * 1024 * 1024); // stopped reading, not drained
  });

  it('gives up on a response that trickles past the deadline', async () => {
    await start();
    rs.route('/mcp', unauthorized(`Bearer resource_metadata="${rs.url}/slow"`));
    const timers: NodeJS.Timeout[] = [];
    rs.route('/slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"resource":');
      timers.push(setInterval(() => res.destroyed || res.write(' '), 50));
    });
    const startedAt = Date.now();
    await refusal(discoverMcpAuthorization(mcpUrl(), deps, { timeoutMs: 400 }), 'timeout');
    expect(Date.now() - startedAt).toBeLessThan(1_500);
    for (const t of timers) clearInterval(t);
  });

  it('calls metadata that is down for now transient, never a reason to fall back to 2025-03-26', async () => {
    await start();
    rs.route('/mcp', unauthorized('Bearer'));
    rs.route('/.well-known/oauth-protected-resource/mcp', { status: 503 });
    const error = await refusal(discoverMcpAuthorization(mcpUrl(), deps), 'server_unreachable');
    expect(error).toMatchObject({ kind: 'transient', status: 503 });
    expect(rs.paths()).not.toContain('/.well-known/oauth-authorization-server');
  });

  it('calls an unreachable server transient', async () => {
    await start();
    const url = mcpUrl();
    await rs.close();
    const error = await refusal(discoverMcpAuthorization(url, deps), 'server_unreachable');
    expect(error.kind).toBe('transient');
    rs = await startSite();
  });
});

describe('the MCP challenge parser', () => {
  it.each([
    ['Bearer', {}],
    ['bearer', {}],
    ['Bearer realm="mcp"', {}],
    [
      'Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", scope="a b"',
      { resourceMetadata: 'https://mcp.example/.well-known/oauth-protected-resource', scopes: ['a', 'b'] },
    ],
    [
      'Bearer error="insufficient_scope", scope="files:write"',
      { error: 'insufficient_scope', scopes: ['files:write'] },
    ],
    ['Basic realm="x", Bearer scope=read', { scopes: ['read'] }],
    [
      'DPoP algs="ES256", Bearer resource_metadata="https://a.example/m"',
      { resourceMetadata: 'https://a.example/m' },
    ],
  ])('reads %s', async (header, expected) => {
    expect(await parseMcpChallenge(header)).toEqual(expected);
  });

  it.each([
    'Bearer resource_metadata="unterminated',
    'Bearer scope="a" garbage"',
    '',
    'Basic realm="x"',
    'Bearer resource_metadata="not a url"',
  ])('refuses %j', async (header) => {
    const error = await parseMcpChallenge(header).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpDiscoveryError);
    expect((error as McpDiscoveryError).problem).toBe('challenge_malformed');
  });
});

describe('canonical server URIs and resource matching', () => {
  it.each([
    ['HTTPS://MCP.Example.COM:443/mcp', 'https://mcp.example.com/mcp'],
    ['https://mcp.example.com/mcp/', 'https://mcp.example.com/mcp'],
    ['https://mcp.example.com/', 'https://mcp.example.com'],
    ['https://mcp.example.com/mcp#frag', 'https://mcp.example.com/mcp'],
    ['http://127.0.0.1:8080/a/b', 'http://127.0.0.1:8080/a/b'],
  ])('%s → %s', (input, expected) => {
    expect(canonicalServerUri(input)).toBe(expected);
  });

  it('accepts the same URI or a same-origin path prefix on a segment boundary, nothing else', () => {
    const server = 'https://mcp.example.com/api/mcp';
    expect(resourceMatches('https://mcp.example.com/api/mcp/', server)).toBe(true);
    expect(resourceMatches('https://MCP.example.com/api', server)).toBe(true);
    expect(resourceMatches('https://mcp.example.com', server)).toBe(true);
    expect(resourceMatches('https://mcp.example.com/ap', server)).toBe(false);
    expect(resourceMatches('https://mcp.example.com/api/mcp/tools', server)).toBe(false);
    expect(resourceMatches('http://mcp.example.com/api/mcp', server)).toBe(false);
    expect(resourceMatches('https://mcp.example.com:8443/api/mcp', server)).toBe(false);
    expect(resourceMatches('https://other.example/api/mcp', server)).toBe(false);
    expect(resourceMatches('not a url', server)).toBe(false);
  });

  it('lists the well-known locations in the spec order', () => {
    expect(
      protectedResourceMetadataUrls(new URL('https://m.example/a/mcp'), 'https://m.example/hint').map(String),
    ).toEqual([
      'https://m.example/hint',
      'https://m.example/.well-known/oauth-protected-resource/a/mcp',
      'https://m.example/.well-known/oauth-protected-resource',
    ]);
    expect(protectedResourceMetadataUrls(new URL('https://m.example/')).map(String)).toEqual([
      'https://m.example/.well-known/oauth-protected-resource',
    ]);
    expect(authorizationServerMetadataUrls(new URL('https://as.example')).map(String)).toEqual([
      'https://as.example/.well-known/oauth-authorization-server',
      'https://as.example/.well-known/openid-configuration',
    ]);
    expect(authorizationServerMetadataUrls(new URL('https://as.example/t/1/')).map(String)).toEqual([
      'https://as.example/.well-known/oauth-authorization-server/t/1',
      'https://as.example/.well-known/openid-configuration/t/1',
      'https://as.example/t/1/.well-known/openid-configuration',
    ]);
  });
});
