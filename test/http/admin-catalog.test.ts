import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/index.js';
import { generateKey } from '../../src/crypto/index.js';
import { mintToken } from '../../src/identity/jwt.js';
import { connectMcpServer, gatewayAgent } from '../mcp/support.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startMcpPeer } from '../support/mcp-peer.js';
import { startTestService, type TestService, testJwtSecret } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const configSecret = 'config-client-secret-value-0123456789';
const adminSecret = 'admin-typed-client-secret-abcdefghij';
const rotatedSecret = 'rotated-client-secret-klmnopqrstuv';

/** The run-time catalog's write side: RBAC, validation, read-only config entries, write-only secrets, audit. */
describe.each(databaseKinds)('admin catalog API on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;
  const admin = 'root-user';

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${svc.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await svc.token(admin)}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, text, json: text === '' ? undefined : JSON.parse(text), headers: r.headers };
  };
  const asUser = async (userId: string, path: string, groups?: string[]) => {
    const token = await mintToken(testJwtSecret, { sub: userId, ...(groups ? { groups } : {}) });
    return fetch(`${svc.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  };
  const provider = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    type: 'oauth2',
    authorizationEndpoint: 'https://p.example/authorize',
    tokenEndpoint: 'https://p.example/token',
    clientId: 'nunq',
    clientSecret: adminSecret,
    ...extra,
  });

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({
      database,
      admins: [admin],
      serviceOptions: { background: false },
      providers: [
        {
          id: 'from-file',
          type: 'oauth2',
          authorizationEndpoint: 'https://f.example/authorize',
          tokenEndpoint: 'https://f.example/token',
          clientId: 'nunq',
          clientSecret: configSecret,
        },
      ],
      integrations: [{ id: 'file-api', name: 'File API', provider: 'from-file', scopes: ['read'] }],
      mcpServers: [{ id: 'file-mcp', name: 'File MCP', url: 'https://mcp.example/mcp' }],
    });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const routes: Array<[string, string]> = [
    ['GET', '/api/v1/admin/providers'],
    ['POST', '/api/v1/admin/providers'],
    ['GET', '/api/v1/admin/providers/from-file'],
    ['PATCH', '/api/v1/admin/providers/from-file'],
    ['DELETE', '/api/v1/admin/providers/from-file'],
    ['GET', '/api/v1/admin/integrations'],
    ['POST', '/api/v1/admin/integrations'],
    ['GET', '/api/v1/admin/integrations/file-api'],
    ['PATCH', '/api/v1/admin/integrations/file-api'],
    ['DELETE', '/api/v1/admin/integrations/file-api'],
    ['GET', '/api/v1/admin/mcp-servers'],
    ['POST', '/api/v1/admin/mcp-servers'],
    ['POST', '/api/v1/admin/mcp-servers/preview'],
    ['GET', '/api/v1/admin/mcp-servers/file-mcp'],
    ['PATCH', '/api/v1/admin/mcp-servers/file-mcp'],
    ['DELETE', '/api/v1/admin/mcp-servers/file-mcp'],
  ];

  it.each(routes)(
    '%s %s: 404 to a signed-in non-admin (bearer and session), 401 without credentials, nothing changed',
    async (method, path) => {
      const body = method === 'POST' || method === 'PATCH' ? JSON.stringify(provider('by-user')) : undefined;
      const headers: Record<string, string> =
        body === undefined ? {} : { 'content-type': 'application/json' };
      const byBearer = await fetch(`${svc.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${await svc.token('alice')}`, ...headers },
        ...(body === undefined ? {} : { body }),
      });
      expect(byBearer.status).toBe(404);
      expect(await byBearer.json()).toMatchObject({ code: 'not_found' });
      const ua = await signedInAgent(svc, 'alice');
      const csrf = JSON.parse((await ua.get(`${svc.url}/api/v1/me`)).body).csrfToken as string;
      const cookie = Object.entries(ua.cookies(svc.url))
        .map(([name, value]) => `${name}=${value}`)
        .join('; ');
      const bySession = await fetch(`${svc.url}${path}`, {
        method,
        headers: { cookie, 'x-csrf-token': csrf, origin: svc.url, ...headers },
        ...(body === undefined ? {} : { body }),
      });
      expect(bySession.status).toBe(404);
      const anonymous = await fetch(`${svc.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      });
      expect(anonymous.status).toBe(401);
      expect((await call('GET', '/api/v1/admin/providers/by-user')).status).toBe(404);
      expect((await call('GET', '/api/v1/admin/providers/from-file')).status).toBe(200);
    },
  );

  it('refuses non-admins on every /api/v1/admin route of the route table (a new route cannot skip it)', async () => {
    const table = routeTable(svc.service.app.printRoutes({ commonPrefix: false })).filter(
      ([method, path]) => path.startsWith('/api/v1/admin/') && method !== 'HEAD' && method !== 'OPTIONS',
    );
    // The table is the source: every catalog route listed above is in it, and more may come.
    for (const [method, path] of routes) {
      expect(table).toContainEqual([method, path.replace(/\/(from-file|file-api|file-mcp)$/, '/:id')]);
    }
    const user = await svc.token('alice');
    for (const [method, pattern] of table) {
      const path = pattern.replace(/:[a-zA-Z]+/g, 'from-file');
      const init = (authorization?: string): RequestInit => ({
        method,
        headers: {
          ...(authorization === undefined ? {} : { authorization }),
          ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }),
        },
        ...(method === 'GET' || method === 'DELETE' ? {} : { body: '{}' }),
      });
      expect((await fetch(`${svc.url}${path}`, init(`Bearer ${user}`))).status, `${method} ${path}`).toBe(
        404,
      );
      expect((await fetch(`${svc.url}${path}`, init())).status, `${method} ${path}`).toBe(401);
    }
    expect(table.length).toBeGreaterThanOrEqual(routes.length);
  });

  it('creates a provider; its secret is write-only: never in a response, set/not set and when it changed', async () => {
    const created = await call('POST', '/api/v1/admin/providers', provider('acme'));
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/api/v1/admin/providers/acme');
    expect(created.json).toMatchObject({
      id: 'acme',
      type: 'oauth2',
      clientId: 'nunq',
      hasClientSecret: true,
      source: 'admin',
      enabled: true,
    });
    expect(Date.parse(created.json.clientSecretChangedAt)).toBeGreaterThan(0);
    expect(created.json).not.toHaveProperty('clientSecret');
    const list = await call('GET', '/api/v1/admin/providers');
    const one = await call('GET', '/api/v1/admin/providers/acme');
    for (const text of [created.text, list.text, one.text]) {
      expect(text).not.toContain(adminSecret);
      expect(text).not.toContain(configSecret);
    }
    expect(list.json.find((p: { id: string }) => p.id === 'from-file')).toMatchObject({
      hasClientSecret: true,
      source: 'config',
    });
    // Sealed at rest, readable by the service only.
    expect(await svc.service.ctx.catalog.providerCredentials('acme')).toEqual({ clientSecret: adminSecret });
  });

  it('PATCH without clientSecret keeps it; a new one replaces it; null clears it (with clientAuthMethod none)', async () => {
    await call('POST', '/api/v1/admin/providers', provider('keep'));
    const before = (await call('GET', '/api/v1/admin/providers/keep')).json;
    const renamed = await call('PATCH', '/api/v1/admin/providers/keep', { clientId: 'nunq-2' });
    expect(renamed.status).toBe(200);
    expect(renamed.json).toMatchObject({ clientId: 'nunq-2', hasClientSecret: true });
    expect(renamed.json.clientSecretChangedAt).toBe(before.clientSecretChangedAt);
    expect(await svc.service.ctx.catalog.providerCredentials('keep')).toEqual({ clientSecret: adminSecret });

    const rotated = await call('PATCH', '/api/v1/admin/providers/keep', { clientSecret: rotatedSecret });
    expect(rotated.status).toBe(200);
    expect(rotated.text).not.toContain(rotatedSecret);
    expect(await svc.service.ctx.catalog.providerCredentials('keep')).toEqual({
      clientSecret: rotatedSecret,
    });

    // A basic-auth client without a secret is the same error as in the file.
    const refused = await call('PATCH', '/api/v1/admin/providers/keep', { clientSecret: null });
    expect(refused.status).toBe(400);
    expect(refused.json.detail).toBe(
      'body.clientSecret: required when clientAuthMethod is client_secret_basic',
    );
    const cleared = await call('PATCH', '/api/v1/admin/providers/keep', {
      clientSecret: null,
      clientAuthMethod: 'none',
    });
    expect(cleared.status).toBe(200);
    expect(cleared.json).toMatchObject({ hasClientSecret: false, clientAuthMethod: 'none' });
    expect(await svc.service.ctx.catalog.providerCredentials('keep')).toEqual({});
  });

  it('checks bodies with the config file schema: the same message for the same field, nothing saved', async () => {
    const { clientId: _omitted, ...noClientId } = provider('bad');
    const r = await call('POST', '/api/v1/admin/providers', noClientId);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json.code).toBe('validation_failed');
    expect(r.json.errors).toEqual([{ path: 'body.clientId', message: 'required' }]);
    let yaml: ConfigError | undefined;
    try {
      validateConfig({
        encryption: { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
        auth: { mode: 'dev' },
        providers: [noClientId],
      });
    } catch (error) {
      yaml = error as ConfigError;
    }
    expect(yaml?.issues).toEqual([{ path: 'providers[0].clientId', message: 'required' }]);
    expect((await call('GET', '/api/v1/admin/providers/bad')).status).toBe(404);

    const badScope = await call('POST', '/api/v1/admin/integrations', {
      id: 'bad-scope',
      name: 'Bad',
      provider: 'acme',
      scopes: ['has space'],
    });
    expect(badScope.status).toBe(400);
    expect(badScope.json.detail).toMatch(/^body\.scopes\.0: must be one scope token/);
    const unknownProvider = await call('POST', '/api/v1/admin/integrations', {
      id: 'orphan',
      name: 'Orphan',
      provider: 'nope',
    });
    expect(unknownProvider.status).toBe(400);
    expect(unknownProvider.json.errors[0].path).toBe('body.provider');
    const refusedUrl = await call('POST', '/api/v1/admin/mcp-servers', {
      id: 'meta',
      name: 'Metadata service',
      url: 'http://169.254.169.254/mcp',
    });
    expect(refusedUrl.status).toBe(400);
    expect(refusedUrl.json.errors[0].path).toBe('body.url');
    for (const id of ['bad-scope', 'orphan']) {
      expect((await call('GET', `/api/v1/admin/integrations/${id}`)).status).toBe(404);
    }
    expect((await call('GET', '/api/v1/admin/mcp-servers/meta')).status).toBe(404);
  });

  it('answers 409 to any change of a config entry, enabled included', async () => {
    const changes: Array<[string, string, unknown]> = [
      ['PATCH', '/api/v1/admin/providers/from-file', { enabled: false }],
      ['PATCH', '/api/v1/admin/providers/from-file', { clientId: 'other' }],
      ['DELETE', '/api/v1/admin/providers/from-file', undefined],
      ['PATCH', '/api/v1/admin/integrations/file-api', { enabled: false }],
      ['DELETE', '/api/v1/admin/integrations/file-api', undefined],
      ['PATCH', '/api/v1/admin/mcp-servers/file-mcp', { name: 'Renamed' }],
      ['DELETE', '/api/v1/admin/mcp-servers/file-mcp', undefined],
    ];
    for (const [method, path, body] of changes) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(409);
      expect(r.json.code).toBe('read_only');
    }
    expect((await call('GET', '/api/v1/admin/integrations/file-api')).json).toMatchObject({
      enabled: true,
      name: 'File API',
    });
  });

  it("refuses the ids the console's own pages take (a provider 'new', an MCP server 'preview'), naming body.id", async () => {
    const refusals = [
      await call('POST', '/api/v1/admin/providers', provider('new')),
      await call('POST', '/api/v1/admin/mcp-servers', {
        id: 'preview',
        name: 'P',
        url: 'https://mcp.example/p',
      }),
    ];
    for (const r of refusals) {
      expect(r.status).toBe(400);
      expect(r.json.detail).toMatch(/^body\.id: "(new|preview)" is reserved by the console/);
    }
    expect((await call('GET', '/api/v1/admin/providers/new')).status).toBe(404);
    expect((await call('GET', '/api/v1/admin/mcp-servers/preview')).status).toBe(404);
  });

  it('refuses a duplicate id with 409; integrations and MCP servers share one namespace', async () => {
    expect((await call('POST', '/api/v1/admin/providers', provider('acme'))).status).toBe(409);
    expect((await call('POST', '/api/v1/admin/providers', provider('from-file'))).status).toBe(409);
    const integration = { id: 'shared', name: 'Shared', provider: 'acme', scopes: ['read'] };
    expect((await call('POST', '/api/v1/admin/integrations', integration)).status).toBe(201);
    const twin = await call('POST', '/api/v1/admin/mcp-servers', {
      id: 'shared',
      name: 'Twin',
      url: 'https://mcp.example/other',
    });
    expect(twin.status).toBe(409);
    expect(twin.json.code).toBe('already_exists');
    expect(
      (
        await call('POST', '/api/v1/admin/mcp-servers', {
          id: 'file-api',
          name: 'x',
          url: 'https://x.example/mcp',
        })
      ).status,
    ).toBe(409);
  });

  it('refuses to delete a provider integrations use, listing them', async () => {
    const r = await call('DELETE', '/api/v1/admin/providers/acme');
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ code: 'in_use', integrations: ['shared'] });
    expect((await call('GET', '/api/v1/admin/providers/acme')).status).toBe(200);
    await call('POST', '/api/v1/admin/providers', provider('unused'));
    expect((await call('DELETE', '/api/v1/admin/providers/unused')).status).toBe(204);
    expect((await call('GET', '/api/v1/admin/providers/unused')).status).toBe(404);
  });

  it('answers 409 to an edit based on an outdated read (If-Match), not a silent overwrite', async () => {
    const read = await call('GET', '/api/v1/admin/integrations/shared');
    const etag = read.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"\d+"$/);
    const first = await call(
      'PATCH',
      '/api/v1/admin/integrations/shared',
      { name: 'First' },
      { 'if-match': etag },
    );
    expect(first.status).toBe(200);
    const second = await call(
      'PATCH',
      '/api/v1/admin/integrations/shared',
      { name: 'Second' },
      { 'if-match': etag },
    );
    expect(second.status).toBe(409);
    expect(second.json.code).toBe('edit_conflict');
    expect((await call('GET', '/api/v1/admin/integrations/shared')).json.name).toBe('First');
  });

  it('a disabled integration, or one of a disabled provider, is not offered: absent from the list, /connect 404', async () => {
    const listed = async () =>
      ((await (await asUser('bob', '/api/v1/integrations')).json()) as Array<{ id: string }>).map(
        (i) => i.id,
      );
    expect(await listed()).toContain('shared');
    const off = await call('PATCH', '/api/v1/admin/integrations/shared', { enabled: false });
    expect(off.json).toMatchObject({ enabled: false, usable: false, unusableConnections: 0 });
    await new Promise((r) => setTimeout(r, 1100)); // the catalog caches' lifetime
    expect(await listed()).not.toContain('shared');
    expect((await asUser('bob', '/connect/shared')).status).toBe(404);
    await call('PATCH', '/api/v1/admin/integrations/shared', { enabled: true });
    expect(await listed()).toContain('shared');
    expect((await asUser('bob', '/connect/shared')).status).toBe(200);

    const providerOff = await call('PATCH', '/api/v1/admin/providers/acme', { enabled: false });
    expect(providerOff.json).toMatchObject({ enabled: false, unusableConnections: 0 });
    expect(await listed()).not.toContain('shared');
    expect((await asUser('bob', '/connect/shared')).status).toBe(404);
    expect((await call('GET', '/api/v1/admin/integrations/shared')).json).toMatchObject({
      enabled: true,
      usable: false,
    });
    await call('PATCH', '/api/v1/admin/providers/acme', { enabled: true });
    expect(await listed()).toContain('shared');
  });

  it('limits an integration to groups: others do not see it and get 404 on /connect, by bearer and by session', async () => {
    const r = await call('POST', '/api/v1/admin/integrations', {
      id: 'finance-api',
      name: 'Finance',
      provider: 'acme',
      groups: ['finance'],
    });
    expect(r.status).toBe(201);
    const ids = async (res: Response) => ((await res.json()) as Array<{ id: string }>).map((i) => i.id);
    expect(await ids(await asUser('bob', '/api/v1/integrations'))).not.toContain('finance-api');
    expect(await ids(await asUser('bob', '/api/v1/integrations', ['sales']))).not.toContain('finance-api');
    expect(await ids(await asUser('carol', '/api/v1/integrations', ['sales', 'finance']))).toContain(
      'finance-api',
    );
    expect((await asUser('bob', '/connect/finance-api', ['sales'])).status).toBe(404);
    expect((await asUser('carol', '/connect/finance-api', ['finance'])).status).toBe(200);
    const started = await fetch(`${svc.url}/api/v1/connections`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await mintToken(testJwtSecret, { sub: 'bob' })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ integration: 'finance-api' }),
    });
    expect(started.status).toBe(404);
    // A session keeps the groups of the token it was started with.
    const member = await signedInAgent(
      { url: svc.url, token: (sub) => mintToken(testJwtSecret, { sub, groups: ['finance'] }) },
      'dora',
    );
    const outsider = await signedInAgent(svc, 'erin');
    expect((await member.get(`${svc.url}/`)).body).toContain('Finance');
    expect((await outsider.get(`${svc.url}/`)).body).not.toContain('Finance');
    expect((await outsider.get(`${svc.url}/connect/finance-api`)).status).toBe(404);
  });

  it('MCP servers: disabled answers 409 integration_disabled at the gateway; outside its groups 404', async () => {
    const created = await call('POST', '/api/v1/admin/mcp-servers', {
      id: 'tools',
      name: 'Tools',
      url: 'https://mcp.example/mcp',
      clientId: 'pre-registered',
      clientSecret: adminSecret,
      groups: ['eng'],
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      hasClientSecret: true,
      clientId: 'pre-registered',
      groups: ['eng'],
    });
    expect(created.text).not.toContain(adminSecret);
    const initialize = async (groups?: string[]) =>
      fetch(`${svc.url}/mcp/tools`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await mintToken(testJwtSecret, { sub: 'bob', ...(groups ? { groups } : {}) })}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        }),
      });
    const outsider = await initialize(['sales']);
    expect(outsider.status).toBe(404);
    expect((await outsider.json()).code).toBe('integration_not_found');
    expect((await initialize(['eng'])).status).toBe(200);
    const off = await call('PATCH', '/api/v1/admin/mcp-servers/tools', { enabled: false });
    expect(off.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const refused = await initialize(['eng']);
    expect(refused.status).toBe(409);
    expect((await refused.json()).code).toBe('integration_disabled');
    expect((await call('DELETE', '/api/v1/admin/mcp-servers/tools')).status).toBe(204);
    expect((await call('GET', '/api/v1/admin/mcp-servers/tools')).status).toBe(404);
  });

  it('previews an MCP server by URL without registering or saving anything', async () => {
    const peer = await startMcpPeer();
    const before = await call('GET', '/api/v1/admin/mcp-servers');
    const r = await call('POST', '/api/v1/admin/mcp-servers/preview', { url: peer.url });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      resource: peer.url,
      authorizationServer: peer.issuer,
      registration: 'dcr',
      scopes: expect.any(Array),
      problems: [],
    });
    expect(peer.received.registrations).toEqual([]);
    expect(await svc.service.ctx.store.db.selectFrom('mcp_registrations').selectAll().execute()).toEqual([]);
    expect(await svc.service.ctx.store.db.selectFrom('mcp_discovery').selectAll().execute()).toEqual([]);
    expect((await call('GET', '/api/v1/admin/mcp-servers')).json).toEqual(before.json);

    const preRegistered = await call('POST', '/api/v1/admin/mcp-servers/preview', {
      url: peer.url,
      clientId: 'mine',
    });
    expect(preRegistered.json.registration).toBe('pre-registered');
    const closed = await startMcpPeer({ registration: false });
    const none = await call('POST', '/api/v1/admin/mcp-servers/preview', { url: closed.url });
    expect(none.json).toMatchObject({ registration: 'none', problems: [{ code: 'client_required' }] });
    const bad = await call('POST', '/api/v1/admin/mcp-servers/preview', { url: 'ftp://x.example/' });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe('body.url');
    // A network the outbound policy refuses is never contacted (SSRF).
    const metadata = await call('POST', '/api/v1/admin/mcp-servers/preview', {
      url: 'http://169.254.169.254/mcp',
    });
    expect(metadata.status).toBe(400);
    expect(metadata.json.errors).toEqual([
      { path: 'body.url', message: 'is refused by the outbound policy (scheme, or a network not allowed)' },
    ]);

    const saved = await call('POST', '/api/v1/admin/mcp-servers', {
      id: 'peer',
      name: 'Peer',
      url: peer.url,
    });
    expect(saved.status).toBe(201);
    const offered = (await (await asUser('bob', '/api/v1/integrations')).json()) as Array<{
      id: string;
      kind: string;
    }>;
    expect(offered).toContainEqual(
      expect.objectContaining({ id: 'peer', kind: 'mcp', status: 'not_connected' }),
    );
    // Users connect it as any MCP server; then deleting it must be confirmed and revokes the grant.
    const { connectionId } = await connectMcpServer(svc, 'bob', 'peer');
    const { client } = await gatewayAgent(svc, 'bob', 'peer');
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
    const unconfirmed = await call('DELETE', '/api/v1/admin/mcp-servers/peer');
    expect(unconfirmed.json).toMatchObject({ code: 'confirm_required', connections: 1 });
    expect((await call('DELETE', '/api/v1/admin/mcp-servers/peer?confirm=true')).status).toBe(204);
    const deleted = await svc.service.ctx.store.db
      .selectFrom('audit_log')
      .select('data')
      .where('target_id', '=', connectionId)
      .where('action', '=', 'connection.deleted')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(deleted.data)).toMatchObject({ integration: 'peer', revocation: 'revoked' });
  });

  it('audits every change with the admin as actor, and never a secret', async () => {
    const rows = await svc.service.ctx.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', 'like', 'admin.%')
      .orderBy('id')
      .execute();
    const actions = rows.map((r) => `${r.action} ${r.target_id}`);
    for (const expected of [
      'admin.provider_created acme',
      'admin.provider_updated keep',
      'admin.provider_deleted unused',
      'admin.integration_created shared',
      'admin.integration_updated shared',
      'admin.integration_created tools',
      'admin.integration_deleted tools',
    ]) {
      expect(actions).toContain(expected);
    }
    expect(new Set(rows.map((r) => r.actor))).toEqual(new Set([admin]));
    const text = JSON.stringify(rows);
    for (const secret of [adminSecret, rotatedSecret, configSecret]) expect(text).not.toContain(secret);
    expect(
      rows.find((r) => r.action === 'admin.provider_updated' && r.data.includes('cleared')),
    ).toBeDefined();
    for (const line of svc.logs)
      for (const secret of [adminSecret, rotatedSecret]) expect(line).not.toContain(secret);
  });

  it('refuses to start with a config file that names an id an admin created, naming both, and keeps the admin entry', async () => {
    let refusal: unknown;
    try {
      const other = await startTestService({
        database,
        serviceOptions: { background: false },
        providers: [
          {
            id: 'acme',
            type: 'oauth2',
            authorizationEndpoint: 'https://evil.example/authorize',
            tokenEndpoint: 'https://evil.example/token',
            clientId: 'other',
          },
        ],
        integrations: [{ id: 'shared', name: 'From file', provider: 'acme' }],
      });
      await other.close();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as ConfigError).issues.map((i) => i.path)).toEqual([
      'providers[0].id',
      'integrations[0].id',
    ]);
    expect((refusal as ConfigError).message).toContain('an administrator created the provider "acme"');
    expect((await call('GET', '/api/v1/admin/providers/acme')).json).toMatchObject({
      source: 'admin',
      authorizationEndpoint: 'https://p.example/authorize',
    });
    expect((await call('GET', '/api/v1/admin/integrations/shared')).json).toMatchObject({
      source: 'admin',
      name: 'First',
    });
  });
});

/** `[method, path]` of every route in Fastify's `printRoutes({ commonPrefix: false })` tree. */
function routeTable(printed: string): Array<[string, string]> {
  const parents: string[] = [];
  const out: Array<[string, string]> = [];
  for (const line of printed.split('\n')) {
    const m = /^([│\s]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = (m[1] ?? '').length / 4;
    const full = `${depth > 0 ? (parents[depth - 1] ?? '') : ''}${m[2]}`;
    parents[depth] = full;
    parents.length = depth + 1;
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '')) out.push([method, full]);
  }
  return out;
}
