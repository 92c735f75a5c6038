/**
 * A real MCP server for the gateway tests: the MCP SDK's McpServer over its Streamable HTTP
 * transport (one transport per session), behind a node:http bearer check that accepts only
 * access tokens issued by the test's oidc-provider (verified against its JWKS, expiry enforced).
 * It records every request it saw, can be told to refuse the next valid tokens (401, which makes
 * the gateway refresh), answers `admin-report` with a 403 `insufficient_scope` challenge, and
 * drops the connection in the middle of `drop`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { Kysely } from 'kysely';
import * as z from 'zod';
import type { Database } from '../../src/store/types.js';

export interface SeenRequest {
  method: string;
  authorization: string | undefined;
  cookie: string | undefined;
  sessionId: string | undefined;
  /** `sub` of the verified token; undefined when refused. */
  sub: string | undefined;
  status: 'ok' | 'refused';
  rpcMethod: string | undefined;
  /** The JSON-RPC id and `params.name` of the (first) message. */
  rpcId: unknown;
  rpcName: string | undefined;
  protocolVersion: string | undefined;
}

export interface McpUpstream {
  url: string;
  seen: SeenRequest[];
  /** Refuses the next `n` tool calls that carry a valid token with 401. */
  refuseNext(n: number): void;
  /** Answers the next `initialize` with 503 (a server briefly down). */
  failNextInitialize(): void;
  /** Forgets every session (as a restarted server would). */
  forgetSessions(): void;
  sessionCount(): number;
  close(): Promise<void>;
}

export const requiredScope = 'items:write';

/** The scopes of the tracker integration that the gateway tests make an MCP server of. */
const trackerScopes = ['openid', 'offline_access', 'items:read'];

/**
 * The tracker in the config: an OAuth integration of the demo provider, so that the tests connect
 * it through the real flow before `trackerIsMcp` makes it an MCP server integration.
 */
export const trackerIntegration = {
  id: 'tracker',
  name: 'Issue tracker',
  provider: 'demo',
  scopes: trackerScopes,
  api: { baseUrl: 'http://127.0.0.1:9/' },
};

/** Makes the tracker an MCP server integration at `url` (its connections stay as they are). */
export async function trackerIsMcp(db: Kysely<Database>, url: string): Promise<void> {
  await db
    .updateTable('integrations')
    .set({ kind: 'mcp', settings: JSON.stringify({ scopes: trackerScopes, url }) })
    .where('id', '=', 'tracker')
    .execute();
}

export async function startMcpUpstream(issuer: string): Promise<McpUpstream> {
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    jwks_uri: string;
  };
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const seen: SeenRequest[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let refusals = 0;
  let failInitialize = false;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text === '' ? undefined : JSON.parse(text);
    const rpc = (Array.isArray(body) ? body[0] : body) as
      | { method?: string; id?: unknown; params?: { name?: string } }
      | undefined;
    const header = req.headers.authorization;
    const record: SeenRequest = {
      method: req.method ?? '',
      authorization: header,
      cookie: req.headers.cookie,
      sessionId: req.headers['mcp-session-id'] as string | undefined,
      sub: undefined,
      status: 'refused',
      rpcMethod: rpc?.method,
      rpcId: rpc?.id,
      rpcName: rpc?.params?.name,
      protocolVersion: req.headers['mcp-protocol-version'] as string | undefined,
    };
    seen.push(record);
    const token = /^Bearer (.+)$/.exec(header ?? '')?.[1];
    try {
      if (token === undefined) throw new Error('no token');
      const { payload } = await jwtVerify(token, jwks, { issuer, clockTolerance: 0 });
      record.sub = payload.sub;
    } catch {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    if (refusals > 0 && rpc?.method === 'tools/call') {
      refusals -= 1;
      record.sub = undefined;
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    if (rpc?.method === 'initialize' && failInitialize) {
      failInitialize = false;
      res.writeHead(503).end();
      return;
    }
    // A client named `downgrade-me` meets a server that only speaks an older revision.
    const init = rpc as { params?: { clientInfo?: { name?: string }; protocolVersion?: string } } | undefined;
    if (rpc?.method === 'initialize' && init?.params?.clientInfo?.name === 'downgrade-me') {
      init.params.protocolVersion = '2025-03-26';
    }
    if (rpc?.method === 'tools/call' && rpc.params?.name === 'admin-report') {
      const scopes = String(decodeJwt(token).scope ?? '').split(' ');
      if (!scopes.includes(requiredScope)) {
        res
          .writeHead(403, {
            'www-authenticate': `Bearer error="insufficient_scope", scope="${requiredScope}", error_description="more scope needed"`,
          })
          .end();
        return;
      }
    }
    if (rpc?.method === 'tools/call' && rpc.params?.name === 'drop') {
      record.status = 'ok';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"');
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    record.status = 'ok';
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (transport === undefined) {
      if (typeof sessionId === 'string' || rpc?.method !== 'initialize') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
        );
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, created);
        },
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) transports.delete(created.sessionId);
      };
      await buildServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    refuseNext: (n) => {
      refusals = n;
    },
    failNextInitialize: () => {
      failInitialize = true;
    },
    forgetSessions: () => transports.clear(),
    sessionCount: () => transports.size,
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function buildServer(): McpServer {
  const server = new McpServer({ name: 'tracker-upstream', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes its text', inputSchema: { text: z.string() } },
    async ({ text }) => ({
      content: [{ type: 'text', text: `echo: ${text}` }],
      structuredContent: undefined,
    }),
  );
  server.registerTool(
    'slow',
    { description: 'Reports progress', inputSchema: { steps: z.number().int().min(1).max(10) } },
    async ({ steps }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: i, total: steps, message: `step ${i}` },
          });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return { content: [{ type: 'text', text: `done after ${steps} steps` }] };
    },
  );
  server.registerTool(
    'nap',
    { description: 'Answers after a silence', inputSchema: { ms: z.number().int().min(0).max(60_000) } },
    async ({ ms }) => {
      await new Promise((r) => setTimeout(r, ms));
      return { content: [{ type: 'text', text: `awake after ${ms} ms` }] };
    },
  );
  server.registerTool('ask', { description: 'Asks the user for a name' }, async () => {
    const answer = await server.server.elicitInput({
      mode: 'form',
      message: 'Who is asking?',
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    });
    const name = answer.action === 'accept' ? String(answer.content?.name) : answer.action;
    return { content: [{ type: 'text', text: `hello ${name}` }] };
  });
  server.registerTool('admin-report', { description: 'Needs items:write' }, async () => ({
    content: [{ type: 'text', text: 'the admin report' }],
  }));
  server.registerTool('drop', { description: 'Drops the connection mid-call' }, async () => ({
    content: [{ type: 'text', text: 'never sent' }],
  }));
  server.registerPrompt(
    'greet',
    { description: 'A greeting', argsSchema: { who: z.string() } },
    ({ who }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${who}` } }],
    }),
  );
  server.registerResource('readme', 'tracker://readme', { description: 'The readme' }, async (uri) => ({
    contents: [{ uri: uri.href, text: 'tracker readme' }],
  }));
  return server;
}
