/**
 * The MCP parts of the gateway benchmark (bench/gateway.ts): the upstream MCP server, run as its
 * own process (`startUpstream`), and the load generator's MCP client: sessions opened once over
 * raw undici requests and `tools/call` of the `echo` tool, each answer checked, plus a check of a
 * target with the SDK's own `Client`; and the bare hop (`startBareHop`): a pass-through that does
 * as little as an HTTP hop can (node:http in, an undici Pool out, the bearer swapped for the
 * upstream's token, the MCP headers passed, each body read whole and written at once), the floor
 * any gateway stands on.
 * Run as a script with `--role upstream` or `--role bare-hop`, this file is that child (started
 * by `startUpstream` / `startBareHop`, never by hand).
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { type Dispatcher, Pool } from 'undici';
import { z } from 'zod';
import type { DatabaseKind } from '../src/store/database.js';
import { type ChildHandle, forkChild, isMainModule, option, serveParent } from './support.js';

const thisFile = new URL(import.meta.url).pathname;

/** What every call asks the `echo` tool to say back, and what every answer must carry. */
const echoText = 'hello from the gateway bench';

export type Answers = 'json' | 'sse';
export type Path = 'direct' | 'bare' | 'single' | 'aggregate';

/** The upstream's path and the MCP integration id for each answer mode. */
export const servers: Record<Answers, { path: string; integrationId: string }> = {
  json: { path: '/mcp', integrationId: 'bench' },
  sse: { path: '/mcp-sse', integrationId: 'bench-sse' },
};

// ---------------------------------------------------------------------------------------------
// The upstream MCP server (forked, IPC only to start it and read its counters).

/** Starts the upstream in a child process; it accepts `Bearer <token>` and nothing else. */
export async function startUpstream(token: string): Promise<{ url: string; child: ChildHandle }> {
  const child = forkChild(thisFile, ['--role', 'upstream']);
  const { url } = await child.call<{ url: string }>('start', { token });
  return { url, child };
}

export interface UpstreamCounters {
  requests: number;
  /** Requests refused for a missing or wrong bearer (the service's discovery probes included). */
  unauthorized: number;
  /** Requests carrying some other bearer than the static token: must stay 0. */
  foreignCredentials: number;
  sessions: number;
}

/** One `McpServer` per session (an SDK v1 server connects to one transport) with the `echo` tool. */
function echoServer(): McpServer {
  const server = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Says its text back.', inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

function serveUpstream(): void {
  const counters: UpstreamCounters = { requests: 0, unauthorized: 0, foreignCredentials: 0, sessions: 0 };
  serveParent({
    async counters() {
      return counters;
    },
    async start(payload) {
      const expected = Buffer.from(`Bearer ${(payload as { token: string }).token}`);
      const sessions = new Map<string, StreamableHTTPServerTransport>();
      const refuse = (res: ServerResponse, status: number, headers: Record<string, string> = {}) =>
        res
          .writeHead(status, { 'content-type': 'application/json', 'content-length': 2, ...headers })
          .end('{}');
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        counters.requests++;
        const path = (req.url ?? '/').split('?')[0];
        const answers = path === servers.json.path ? 'json' : path === servers.sse.path ? 'sse' : undefined;
        // No protected-resource or authorization-server metadata: the service's discovery finds none.
        if (answers === undefined) return refuse(res, 404);
        const given = req.headers.authorization ?? '';
        const buffer = Buffer.from(given);
        if (buffer.length !== expected.length || !timingSafeEqual(buffer, expected)) {
          counters.unauthorized++;
          if (given !== '') counters.foreignCredentials++;
          return refuse(res, 401, { 'www-authenticate': 'Bearer' });
        }
        const sessionId = req.headers['mcp-session-id'];
        if (typeof sessionId === 'string') {
          const transport = sessions.get(sessionId);
          if (transport === undefined) return refuse(res, 404);
          void transport.handleRequest(req, res);
          return;
        }
        // No session yet: a new transport, which answers anything but `initialize` with 400.
        const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: answers === 'json',
          onsessioninitialized: (id) => {
            sessions.set(id, transport);
            counters.sessions++;
          },
        });
        transport.onclose = () => {
          if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
        };
        echoServer()
          .connect(transport)
          .then(() => transport.handleRequest(req, res))
          .catch(() => {
            if (!res.headersSent) refuse(res, 500);
          });
      };
      const server = createServer(handle);
      server.keepAliveTimeout = 120_000;
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// MCP over raw undici: sessions opened once, `tools/call` in a loop.

interface JsonRpcMessage {
  id?: unknown;
  result?: {
    protocolVersion?: string;
    isError?: boolean;
    content?: Array<{ type?: string; text?: string }>;
  };
  error?: { code: number; message: string };
}

/**
 * The JSON-RPC answer with `id` from a Streamable HTTP response body: a JSON object (or batch)
 * for `application/json`, else the `data:` lines of an SSE stream (one message per event).
 */
function answerFor(contentType: string, text: string, id: number): JsonRpcMessage | undefined {
  const messages: unknown[] = [];
  if (contentType.startsWith('application/json')) {
    const parsed = JSON.parse(text) as unknown;
    messages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
  } else if (contentType.startsWith('text/event-stream')) {
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
        .join('\n');
      if (data !== '') messages.push(JSON.parse(data));
    }
  }
  return messages.find((m): m is JsonRpcMessage => (m as JsonRpcMessage).id === id);
}

export interface McpSession {
  /** Every call's headers: the bearer, the session id, the negotiated protocol version. */
  headers: Record<string, string>;
  /** With `--client sdk`: the SDK client that opened the session and makes the calls. */
  client?: Client;
}

export interface Target {
  name: string;
  path: Path;
  answers: Answers;
  /** Ours only: the database it runs on. */
  kind?: DatabaseKind;
  /** Processes whose CPU counts as the gateway's (ours: the bin and its re-executed server). */
  serverPids: number[];
  readerPid?: number;
  pool: Pool;
  url: string;
  endpoint: string;
  authorization: string;
  tool: string;
  sessions: McpSession[];
  /** HTTP requests sent by the load generator so far, to compare with the log lines read. */
  sent: number;
  nextId: number;
}

const baseHeaders = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** `initialize` and `notifications/initialized`, as an MCP client opens a session. */
export async function openSession(t: Target): Promise<McpSession> {
  const init = await t.pool.request({
    path: t.endpoint,
    method: 'POST',
    headers: { ...baseHeaders, authorization: t.authorization },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'nunq-gateway-bench', version: '1.0.0' },
      },
    }),
  });
  const text = await init.body.text();
  t.sent++;
  const sessionId = init.headers['mcp-session-id'];
  const answer =
    init.statusCode === 200 ? answerFor(String(init.headers['content-type'] ?? ''), text, 0) : undefined;
  const protocolVersion = answer?.result?.protocolVersion;
  if (typeof sessionId !== 'string' || protocolVersion === undefined) {
    throw new Error(
      `${t.name}: initialize answered HTTP ${init.statusCode}` +
        `${typeof sessionId === 'string' ? '' : ' without Mcp-Session-Id'}: ${text.slice(0, 300)}`,
    );
  }
  const headers = {
    ...baseHeaders,
    authorization: t.authorization,
    'mcp-session-id': sessionId,
    'mcp-protocol-version': protocolVersion,
  };
  const initialized = await t.pool.request({
    path: t.endpoint,
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  const notified = await initialized.body.text();
  t.sent++;
  if (initialized.statusCode !== 202) {
    throw new Error(
      `${t.name}: notifications/initialized answered HTTP ${initialized.statusCode}: ${notified.slice(0, 300)}`,
    );
  }
  return { headers };
}

/** With `--client sdk`: a session opened by the SDK's `Client` over its Streamable HTTP transport. */
export async function openSdkSession(t: Target): Promise<McpSession> {
  const transport = new StreamableHTTPClientTransport(new URL(t.endpoint, t.url), {
    requestInit: { headers: { authorization: t.authorization } },
  });
  const client = new Client({ name: 'nunq-gateway-bench', version: '1.0.0' });
  await client.connect(transport);
  t.sent += 2;
  return { headers: {}, client };
}

/** One `tools/call` of the echo tool; true when the answer is the echoed text. */
export async function callEcho(t: Target, session: McpSession): Promise<boolean> {
  if (session.client !== undefined) {
    const result = await session.client.callTool({ name: t.tool, arguments: { text: echoText } });
    const content = result.content as Array<{ text?: string }> | undefined;
    return result.isError !== true && content?.[0]?.text === echoText;
  }
  const id = ++t.nextId;
  const r = await t.pool.request({
    path: t.endpoint,
    method: 'POST',
    headers: session.headers,
    body: `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${t.tool}","arguments":{"text":"${echoText}"}}}`,
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) return false;
  const answer = answerFor(String(r.headers['content-type'] ?? ''), text, id);
  return answer?.result?.isError !== true && answer?.result?.content?.[0]?.text === echoText;
}

/** The SDK's own client lists the tools and calls `echo` once: the target speaks MCP as the SDK does. */
export async function checkWithSdkClient(t: Target): Promise<void> {
  const transport = new StreamableHTTPClientTransport(new URL(t.endpoint, t.url), {
    requestInit: { headers: { authorization: t.authorization } },
  });
  const client = new Client({ name: 'nunq-gateway-bench-check', version: '1.0.0' });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    if (!tools.some((tool) => tool.name === t.tool)) {
      throw new Error(
        `tools/list has no ${t.tool} (has ${tools.map((tool) => tool.name).join(', ') || 'none'})`,
      );
    }
    const result = await client.callTool({ name: t.tool, arguments: { text: echoText } });
    const content = result.content as Array<{ type: string; text?: string }> | undefined;
    if (result.isError === true || content?.[0]?.text !== echoText) {
      throw new Error(`tools/call answered ${JSON.stringify(result).slice(0, 300)}`);
    }
  } catch (error) {
    throw new Error(`${t.name}: the SDK client's check failed: ${(error as Error).message}`);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

/** Starts the bare hop in a child process, in front of `upstream` with its `token`. */
export async function startBareHop(
  upstream: string,
  token: string,
): Promise<{ url: string; child: ChildHandle }> {
  const child = forkChild(thisFile, ['--role', 'bare-hop']);
  const { url } = await child.call<{ url: string }>('start', { upstream, token });
  return { url, child };
}

/** Request and answer headers the bare hop passes (all a Streamable HTTP exchange needs). */
const passedUp = ['content-type', 'content-length', 'accept', 'mcp-session-id', 'mcp-protocol-version'];
const passedDown = ['content-type', 'content-length', 'mcp-session-id'];

function serveBareHop(): void {
  serveParent({
    async start(payload) {
      const o = payload as { upstream: string; token: string };
      const upstream = new Pool(o.upstream);
      const authorization = `Bearer ${o.token}`;
      // Bodies are read whole and sent in one write each way (an MCP call and its answer are
      // small), as the gateway does with a JSON answer: piping costs more writes per call.
      const server = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headers: Record<string, string> = { authorization };
        for (const name of passedUp) {
          const value = req.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        try {
          const up = await upstream.request({
            path: req.url ?? '/',
            method: (req.method ?? 'POST') as Dispatcher.HttpMethod,
            headers,
            ...(chunks.length === 0 ? {} : { body: Buffer.concat(chunks) }),
          });
          const answer = Buffer.from(await up.body.arrayBuffer());
          const down: Record<string, string> = { 'cache-control': 'no-store' };
          for (const name of passedDown) {
            const value = up.headers[name];
            if (typeof value === 'string') down[name] = value;
          }
          down['content-length'] = String(answer.length);
          res.writeHead(up.statusCode, down).end(answer);
        } catch {
          res.writeHead(502).end();
        }
      });
      server.keepAliveTimeout = 120_000;
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },
  });
}

if (isMainModule(import.meta.url) && option('role', '') === 'upstream') serveUpstream();
if (isMainModule(import.meta.url) && option('role', '') === 'bare-hop') serveBareHop();
