import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, customFetch, type JWTPayload, jwtVerify } from 'jose';

export interface StartDemoApiOptions {
  /** The authorization server's issuer identifier; its discovery document names the JWKS. */
  issuer: string;
  /** The `aud` access tokens must carry (the resource indicator the provider issues them for). */
  audience: string;
  /** Listening port on 127.0.0.1; 0 (the default) picks an ephemeral one. */
  port?: number;
  fetch?: typeof fetch;
}

export interface DemoApiCounters {
  requests: number;
  unauthorized: number;
}

export interface RunningDemoApi {
  url: string;
  counters: DemoApiCounters;
  /** Answers the next `n` requests that carry a valid token with 401 invalid_token anyway. */
  failNextWithUnauthorized(n: number): void;
  close(): Promise<void>;
}

const REALM = 'demo-api';
const MAX_BODY_BYTES = 64 * 1024;
/** Deeper JSON is refused before parsing: echoing it back would overflow the stack. */
const MAX_JSON_DEPTH = 64;
const ITEMS = [
  { id: 1, title: 'Welcome to nunq-connect' },
  { id: 2, title: 'This list came through a connection' },
  { id: 3, title: 'Its access token never left the server' },
];

class Unauthorized extends Error {
  readonly code = 'unauthorized';
  constructor(readonly description: string | undefined) {
    super(description ?? 'no access token');
  }
}

/**
 * Starts a tiny protected API on 127.0.0.1 that accepts JWT access tokens (RFC 9068) from `issuer`,
 * verified locally against its JWKS with zero clock tolerance: the demo integration's target.
 * @see RFC 6750 §3 for the 401 challenges.
 */
export async function startDemoApi(opts: StartDemoApiOptions): Promise<RunningDemoApi> {
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  const jwksUri = await discoverJwksUri(opts.issuer, fetchImpl);
  const jwks = createRemoteJWKSet(new URL(jwksUri), { [customFetch]: fetchImpl });
  const counters: DemoApiCounters = { requests: 0, unauthorized: 0 };
  let forcedFailures = 0;

  const authorize = async (req: IncomingMessage): Promise<JWTPayload> => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match?.[1])
      throw new Unauthorized(header === undefined ? undefined : 'malformed Authorization header');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], jwks, {
        issuer: opts.issuer,
        audience: opts.audience,
        typ: 'at+jwt',
        clockTolerance: 0,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch {
      throw new Unauthorized('the access token is invalid or expired');
    }
    if (forcedFailures > 0) {
      forcedFailures -= 1;
      throw new Unauthorized('the access token was rejected (forced by the test switch)');
    }
    return payload;
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const routeKey = `${req.method} ${path}`;
    if (!['GET /me', 'GET /items', 'POST /echo'].includes(routeKey)) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    const token = await authorize(req);
    if (routeKey === 'GET /me') sendJson(res, 200, { sub: token.sub, scope: token.scope ?? '' });
    else if (routeKey === 'GET /items') sendJson(res, 200, { items: ITEMS });
    else {
      const body = await readJson(req);
      if (body === tooDeep) sendJson(res, 400, { error: 'too_deeply_nested', maxDepth: MAX_JSON_DEPTH });
      else if (body === undefined) sendJson(res, 400, { error: 'invalid_json' });
      else sendJson(res, 200, body);
    }
  };

  const server = createServer((req, res) => {
    counters.requests += 1;
    route(req, res).catch((error: unknown) => {
      if (error instanceof Unauthorized) {
        counters.unauthorized += 1;
        res.setHeader('www-authenticate', challenge(error.description));
        sendJson(res, 401, { error: error.description === undefined ? 'unauthorized' : 'invalid_token' });
      } else if (!res.headersSent) {
        sendJson(res, 500, { error: 'server_error' });
      } else {
        // Never leave a request hanging: a response that cannot be finished is cut.
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    counters,
    failNextWithUnauthorized(n) {
      forcedFailures = Math.max(0, Math.floor(n));
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** RFC 6750 §3: no error code when no token was sent, `invalid_token` when one was and failed. */
function challenge(description: string | undefined): string {
  if (description === undefined) return `Bearer realm="${REALM}"`;
  return `Bearer realm="${REALM}", error="invalid_token", error_description="${description}"`;
}

async function discoverJwksUri(issuer: string, fetchImpl: typeof fetch): Promise<string> {
  const res = await fetchImpl(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
    headers: { accept: 'application/json' },
  });
  if (!res.ok) throw new Error(`discovery at ${issuer} answered HTTP ${res.status}`);
  const metadata = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (metadata.issuer !== issuer) throw new Error(`discovery at ${issuer} names another issuer`);
  if (typeof metadata.jwks_uri !== 'string') throw new Error(`discovery at ${issuer} has no jwks_uri`);
  return metadata.jwks_uri;
}

const tooDeep = Symbol('too deeply nested');

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) return tooDeep;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Whether arrays and objects in a JSON text nest deeper than `limit` (brackets in strings ignored). */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body); // before the head: a body that cannot be written must not leave one half-sent
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}
