/**
 * SSRF through the service: an MCP server's challenge, metadata, endpoints and redirects are
 * controlled by whoever runs it. With `outbound.allow` limited to the servers under test
 * (127.0.0.3/32), every way such a server can point the service at a private address is refused
 * on Connect: a problem naming what is wrong, nothing stored, and a listener on the hostile address
 * proves nothing arrived there. The hostile servers are small node:http servers written here.
 * SQLite only: nothing here depends on the database beyond "nothing was stored".
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer as createTcpServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';
import { rowsFor } from './support.js';

/** Where the servers under test listen: the one network `outbound.allow` lists. */
const allowedHost = '127.0.0.3';

/** A TCP listener on a hostile address that counts the connections it gets. */
interface Trap {
  host: string;
  port: number;
  connections: number;
  server: Server;
}

async function trap(host: string): Promise<Trap> {
  const t: Trap = { host, port: 0, connections: 0, server: createTcpServer() };
  t.server.on('connection', (socket) => {
    t.connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    t.server.once('error', reject);
    t.server.listen(0, host, resolve);
  });
  t.port = (t.server.address() as AddressInfo).port;
  return t;
}

/**
 * What a hostile MCP server answers: its `/mcp` challenge hint, its protected-resource metadata
 * (or a redirect in its place), its authorization-server metadata's endpoints.
 */
interface Hostility {
  /** A redirect answered to the MCP probe itself. */
  probeRedirect?: string;
  /** `resource_metadata` of the 401 challenge (default: its own path-inserted well-known URL). */
  hint?: string;
  /** A redirect answered in place of the protected-resource metadata. */
  metadataRedirect?: string;
  /** `authorization_servers` of its protected-resource metadata (default: itself). */
  authorizationServer?: string;
  /** Endpoints of its authorization-server metadata (default: its own). */
  endpoints?: Record<string, string>;
}

interface HostileServer {
  url: string;
  origin: string;
  /** Paths it was asked for. */
  paths: string[];
  close(): Promise<void>;
}

async function hostileServer(h: Hostility): Promise<HostileServer> {
  const paths: string[] = [];
  let origin = '';
  const json = (res: ServerResponse, body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', origin).pathname;
    paths.push(path);
    req.resume();
    if (path === '/mcp') {
      if (h.probeRedirect !== undefined) {
        res.writeHead(307, { location: h.probeRedirect });
        return res.end();
      }
      const hint = h.hint ?? `${origin}/.well-known/oauth-protected-resource/mcp`;
      res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${hint}", scope="tools:read"` });
      return res.end();
    }
    if (path === '/.well-known/oauth-protected-resource/mcp') {
      if (h.metadataRedirect !== undefined) {
        res.writeHead(302, { location: h.metadataRedirect });
        return res.end();
      }
      return json(res, {
        resource: `${origin}/mcp`,
        authorization_servers: [h.authorizationServer ?? origin],
      });
    }
    if (path === '/.well-known/oauth-authorization-server') {
      return json(res, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        registration_endpoint: `${origin}/register`,
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
        ...h.endpoints,
      });
    }
    res.writeHead(404).end();
  };
  const server = createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, allowedHost, resolve));
  origin = `http://${allowedHost}:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/mcp`,
    origin,
    paths,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The ports of the listeners on the hostile addresses, known once they listen. */
interface Ports {
  private2: number;
  loopback: number;
  loopback6: number;
}

/** One hostile MCP server: what it points the service at, and what the refusal must name. */
interface Case {
  id: string;
  name: string;
  hostility: (ports: Ports) => Hostility;
  /** The `problem` of the answer, then texts its `detail` must contain. */
  names: (ports: Ports) => string[];
}

/**
 * Each case: one hostile MCP server, what it points at, and what the refusal must name. The
 * cloud metadata address 169.254.169.254 cannot be listened on here: its cases prove the refusal
 * by the problem alone.
 */
const cases: Case[] = [
  {
    id: 'as-private',
    name: 'protected-resource metadata naming an authorization server at 127.0.0.2',
    hostility: (ports) => ({ authorizationServer: `http://127.0.0.2:${ports.private2}` }),
    names: () => ['address_refused', `127.0.0.2`],
  },
  {
    id: 'as-private-decimal',
    name: 'an authorization server at 2130706434 (127.0.0.2 written as one number)',
    hostility: (ports) => ({ authorizationServer: `http://2130706434:${ports.private2}` }),
    names: () => ['address_refused', '127.0.0.2'],
  },
  {
    id: 'as-unspecified',
    name: 'an authorization server at 0.0.0.0 (which connects to this host)',
    hostility: (ports) => ({ authorizationServer: `http://0.0.0.0:${ports.loopback}` }),
    names: () => ['address_refused', '0.0.0.0'],
  },
  {
    id: 'hint-private',
    name: 'a challenge whose resource_metadata is at 127.0.0.2',
    hostility: (ports) => ({
      hint: `http://127.0.0.2:${ports.private2}/.well-known/oauth-protected-resource/mcp`,
    }),
    names: () => ['address_refused', '127.0.0.2'],
  },
  {
    id: 'as-cloud-metadata',
    name: 'protected-resource metadata naming an authorization server at 169.254.169.254',
    hostility: () => ({ authorizationServer: 'http://169.254.169.254/latest/meta-data' }),
    names: () => ['address_refused', '169.254.169.254'],
  },
  {
    id: 'endpoint-cloud-metadata',
    name: 'authorization-server metadata whose registration endpoint is at 169.254.169.254',
    hostility: () => ({ endpoints: { registration_endpoint: 'http://169.254.169.254/register' } }),
    names: () => ['address_refused', 'registration_endpoint', '169.254.169.254'],
  },
  {
    id: 'as-mapped',
    name: 'an authorization server at [::ffff:127.0.0.2] (IPv4-mapped IPv6)',
    hostility: (ports) => ({ authorizationServer: `http://[::ffff:127.0.0.2]:${ports.private2}` }),
    // The URL parser writes ::ffff:127.0.0.2 as ::ffff:7f00:2.
    names: () => ['address_refused', '::ffff:7f00:2'],
  },
  {
    id: 'as-compatible',
    name: 'an authorization server at [::127.0.0.2] (IPv4-compatible IPv6)',
    hostility: (ports) => ({ authorizationServer: `http://[::127.0.0.2]:${ports.private2}` }),
    names: () => ['address_refused', '::7f00:2'],
  },
  {
    id: 'as-ipv6-loopback',
    name: 'an authorization server at [::1]',
    hostility: (ports) => ({ authorizationServer: `http://[::1]:${ports.loopback6}` }),
    names: () => ['address_refused', '::1'],
  },
  {
    id: 'endpoint-mapped',
    name: 'a token endpoint at [::ffff:127.0.0.2]',
    hostility: (ports) => ({
      endpoints: { token_endpoint: `http://[::ffff:127.0.0.2]:${ports.private2}/token` },
    }),
    names: () => ['address_refused', 'token_endpoint', '::ffff:7f00:2'],
  },
  {
    id: 'redirect-private',
    name: 'protected-resource metadata that redirects to 127.0.0.2',
    hostility: (ports) => ({
      metadataRedirect: `http://127.0.0.2:${ports.private2}/.well-known/oauth-protected-resource/mcp`,
    }),
    names: () => ['address_refused', 'redirect target', '127.0.0.2'],
  },
  {
    id: 'probe-redirect-private',
    name: 'an MCP endpoint that redirects its probe to 127.0.0.2',
    hostility: (ports) => ({ probeRedirect: `http://127.0.0.2:${ports.private2}/mcp` }),
    names: () => ['address_refused', 'redirect target', '127.0.0.2'],
  },
  {
    id: 'dns-loopback',
    name: 'an authorization server at a DNS name resolving to loopback (https://localhost)',
    hostility: (ports) => ({ authorizationServer: `https://localhost:${ports.loopback}` }),
    names: (ports) => ['address_refused', `localhost:${ports.loopback}`, 'refused by policy'],
  },
  {
    id: 'redirect-dns-loopback',
    name: 'protected-resource metadata that redirects to a DNS name resolving to loopback',
    hostility: (ports) => ({ metadataRedirect: `https://localhost:${ports.loopback}/prm` }),
    names: (ports) => ['address_refused', `localhost:${ports.loopback}`, 'refused by policy'],
  },
  {
    id: 'http-dns-loopback',
    name: 'an authorization server at plain http://localhost (https required outside allowed networks)',
    hostility: (ports) => ({ authorizationServer: `http://localhost:${ports.loopback}` }),
    names: (ports) => ['url_refused', `localhost:${ports.loopback}`, 'https'],
  },
];

describe('SSRF: an MCP server pointing the service at private addresses (SQLite)', () => {
  let database: TestDatabase;
  let svc: TestService;
  /** A listener on 127.0.0.2 (also reached as [::ffff:127.0.0.2]). */
  let private2: Trap;
  /** A listener on 127.0.0.1, where `localhost` resolves. */
  let loopback: Trap;
  /** A listener on ::1. */
  let loopback6: Trap;
  const ports = (): Ports => ({
    private2: private2.port,
    loopback: loopback.port,
    loopback6: loopback6.port,
  });
  const connectionsArrived = () => private2.connections + loopback.connections + loopback6.connections;
  const hostile = new Map<string, HostileServer>();

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    private2 = await trap('127.0.0.2');
    loopback = await trap('127.0.0.1');
    loopback6 = await trap('::1');
    for (const c of cases) hostile.set(c.id, await hostileServer(c.hostility(ports())));
    svc = await startTestService({
      database,
      outbound: { allow: [`${allowedHost}/32`] },
      mcpServers: [...hostile].map(([id, h]) => ({ id, name: `Hostile ${id}`, url: h.url })),
    });
  });

  afterAll(async () => {
    await svc?.close();
    await Promise.all([...hostile.values()].map((h) => h.close()));
    await Promise.all(
      [private2, loopback, loopback6].map((t) => t && new Promise((resolve) => t.server.close(resolve))),
    );
    await database?.drop();
  });

  for (const c of cases) {
    it(`refuses ${c.name}`, async () => {
      const { id } = c;
      const h = hostile.get(id) ?? expect.fail(`no server ${id}`);
      const res = await svc.api('alice', '/api/v1/connections', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ integration: id }),
      });
      expect(res.status, c.name).toBe(502);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as { code: string; detail: string; problem: string };
      expect(problem.code).toBe('mcp_discovery_failed');
      const [expectedProblem, ...named] = c.names(ports());
      expect(problem.problem, problem.detail).toBe(expectedProblem);
      for (const text of named) expect(problem.detail, c.name).toContain(text);
      // The hostile server was asked (discovery got as far as the hostile step) ...
      expect(h.paths).toContain('/mcp');
      // ... but nothing reached the private address, and nothing was stored.
      expect(connectionsArrived()).toBe(0);
      expect(await rowsFor(svc, 'connections', id)).toBe(0);
      expect(await rowsFor(svc, 'pending_authorizations', id)).toBe(0);
      const registrations = await svc.service.ctx.store.db
        .selectFrom('mcp_registrations')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(registrations.n)).toBe(0);
      expect((await svc.service.ctx.mcpDiscovery.list()).get(id)).toMatchObject({ ok: false });
    });
  }

  it('a person pressing Connect is told the problem, also on the Integrations page; nothing arrives', async () => {
    const ua = await signedInAgent(svc, 'bob');
    const page = await ua.get(`${svc.url}/connect/dns-loopback`);
    expect(page.status).toBe(200);
    const { response } = await ua.submit(
      page,
      (action) => action.pathname === '/connect/dns-loopback',
      {},
      {
        stopAt: () => true,
      },
    );
    expect(response.status).toBe(502);
    expect(response.body).toContain(`https://localhost:${loopback.port}`);
    expect(response.body).toContain('refused by policy');
    const home = await ua.get(`${svc.url}/`);
    expect(home.body).toContain('data-testid="problem-dns-loopback"');
    expect(home.body).toContain(`localhost:${loopback.port}`);
    expect(connectionsArrived()).toBe(0);
    expect(await rowsFor(svc, 'connections', 'dns-loopback')).toBe(0);
  });

  it('the listeners do count what reaches them (the zero counts above can fail)', async () => {
    const reach = (host: string, port: number) =>
      new Promise<void>((resolve, reject) => {
        const socket = connect(port, host, () => {
          socket.end();
          resolve();
        });
        socket.on('error', reject);
      });
    await reach('127.0.0.2', private2.port);
    await reach('::ffff:127.0.0.2', private2.port);
    await reach('localhost', loopback.port);
    await reach('0.0.0.0', loopback.port);
    await reach('::1', loopback6.port);
    for (let i = 0; i < 50 && connectionsArrived() < 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect(private2.connections).toBe(2);
    expect(loopback.connections).toBe(2);
    expect(loopback6.connections).toBe(1);
  });
});
