/**
 * Local sites for the MCP authorization tests: each an HTTP server on 127.0.0.1 answering from a
 * table of routes (path → answer) and recording every request it gets. An answer is a plain
 * response, or a handler that writes the response itself (streamed, slow, never finished).
 * A sentinel on 127.0.0.2 counts connections: the proof that a refused address got nothing.
 */
import { createServer as createHttpServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Socket } from 'node:net';

export interface SiteRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: string }
  | ((request: SiteRequest, res: ServerResponse) => void);

export interface Site {
  /** `http://127.0.0.1:<port>` */
  url: string;
  readonly received: SiteRequest[];
  /** Answers `path` (without query) with `answer`; unknown paths get 404. */
  route(path: string, answer: Answer): Site;
  /** The paths requested, in order. */
  paths(): string[];
  close(): Promise<void>;
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Answer {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export function redirect(location: string, status = 302): Answer {
  return { status, headers: { location } };
}

/** A 401 with this `WWW-Authenticate` value (or none). */
export function unauthorized(challenge?: string): Answer {
  return { status: 401, headers: challenge === undefined ? {} : { 'www-authenticate': challenge } };
}

export async function startSite(): Promise<Site> {
  const routes = new Map<string, Answer>();
  const received: SiteRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(request);
      const answer = routes.get(new URL(request.url, 'http://x').pathname) ?? { status: 404 };
      if (typeof answer === 'function') return answer(request, res);
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const site: Site = {
    url: `http://127.0.0.1:${port}`,
    received,
    route(path, answer) {
      routes.set(path, answer);
      return site;
    },
    paths: () => received.map((r) => new URL(r.url, 'http://x').pathname),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return site;
}

/** Counts every TCP connection to 127.0.0.2:<port>; answers nothing. */
export async function startSentinel(): Promise<{
  host: string;
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.2', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.2',
    port,
    connections: () => count,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Authorization-server metadata for `issuer`, endpoints under it, PKCE S256 listed. */
export function asMetadata(issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = issuer.replace(/\/$/, '');
  return {
    issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${base}/register`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    ...extra,
  };
}
