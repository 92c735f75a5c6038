import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BearerRefusal } from './mcp-bearer.js';

/** Small node:http helpers of the MCP test server, and the request log's entries. */

/** One HTTP request the MCP server or its authorization server received. */
export interface ReceivedRequest {
  server: 'mcp' | 'auth';
  method: string;
  path: string;
  /** The Authorization header as received (a test peer keeps it to prove whose it was). */
  authorization?: string;
  sessionId?: string;
  /** JSON-RPC methods of a POST to the MCP endpoint. */
  rpcMethods?: string[];
  /**
   * The HTTP status answered, set once the response head is written: for an SSE stream (a GET
   * to /mcp) that is when the stream is open and server notifications can travel on it.
   */
  status?: number;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** Each list of the log keeps at most this many entries (the demo server runs for long). */
const MAX_LOG_ENTRIES = 1000;

/** Appends to a log list, dropping the oldest entries past the cap. */
export function appendToLog<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > MAX_LOG_ENTRIES) list.splice(0, list.length - MAX_LOG_ENTRIES);
}

/** A log entry for a request; its `status` is filled in when the response head is written. */
export function requestEntry(
  server: ReceivedRequest['server'],
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): ReceivedRequest {
  const entry: ReceivedRequest = {
    server,
    method: req.method ?? 'GET',
    path,
    ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
    ...(header(req, 'mcp-session-id') === undefined ? {} : { sessionId: header(req, 'mcp-session-id') }),
  };
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    entry.status = args[0] as number;
    return writeHead(...args);
  }) as ServerResponse['writeHead'];
  res.once('finish', () => {
    entry.status ??= res.statusCode; // Koa (oidc-provider) sends implicit headers
  });
  return entry;
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function refuse(res: ServerResponse, refusal: BearerRefusal): void {
  res.setHeader('www-authenticate', refusal.challenge);
  sendJson(res, refusal.status, refusal.body);
}

/** Starts an SSE answer, then cuts the connection: an upstream that drops the stream mid-call. */
export function hangUp(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': working on it\n\n');
  setTimeout(() => res.destroy(), 20);
}

export function rpcError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null });
}

export function notFound(res: ServerResponse): void {
  sendJson(res, 404, { error: 'not_found' });
}

export function unavailable(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503).end();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function listen(
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export function originOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function closeListener(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
