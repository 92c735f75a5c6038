/**
 * Routes answered before Fastify sees the request: the hot paths of the proxy (its plain calls)
 * and of the MCP gateway (its POSTs).
 *
 * Fastify's request cycle (routing, the hook chain, the reply object, the request logger) cost
 * about a tenth of a proxied call's CPU, as much as the access line and the rate limits together.
 * A fast route takes only the plain case: exactly one `Authorization` header and a Host, on a URL
 * its own pattern accepts, and either no body (GET, HEAD, DELETE without one) or, on a route that
 * reads bodies whole, a POST with a `Content-Type` and a `Content-Length` within the route's
 * limit. Anything else (no or several credentials, a chunked or oversized body, an encoded or
 * unusual path, TRACE) goes to Fastify and its registered route, which stays the full
 * implementation and the one the OpenAPI document lists. On the fast path the request meets what
 * the app's hooks do, in the same order: our security headers, the per-address limit, the
 * bearer's verification, the per-user limit, then the body; errors become the same problem+json
 * answers; every answer leaves the same access line and metric.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyBaseLogger } from 'fastify';
import type { RateLimitCategory } from '../config/index.js';
import type { Identity } from '../identity/identity.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { type Authenticator, singleAuthorizationOf } from './auth.js';
import { logProblem, problemHeaders, toProblem } from './error-answer.js';
import type { Problem } from './problem.js';
import { categoryOf, type LimitSubject, type RateLimits } from './rate-limits.js';

/** A route the fast path answers; its Fastify twin (same URL) answers everything it declines. */
export interface FastRoute<P> {
  /** The Fastify route URL it stands in for: the metric's `route` label, the rate-limit category. */
  readonly url: string;
  /**
   * The route's params when a request URL (as sent) is one for the fast path; undefined leaves
   * the request to Fastify. Must decline every URL Fastify would route elsewhere or refuse, and
   * every URL of a route that answers CORS.
   */
  match(method: string, url: string): P | undefined;
  /**
   * When set, the route also takes a POST whose body (with a `Content-Type`, and a
   * `Content-Length` of at most this many bytes, no `Transfer-Encoding`) it reads whole, as its
   * Fastify twin's buffer parser does under the same limit; `handle` then gets it as `body`.
   * Unset: bodyless GET, HEAD and DELETE only.
   */
  readonly postBodyLimit?: number;
  /** Answers a verified bearer caller; throws Problems, as a Fastify handler does. */
  handle(call: FastCall<P>): Promise<FastAnswer>;
  /** Extra headers on this route's 401s (the proxy's Bearer challenge). */
  readonly challengeHeaders?: Readonly<Record<string, string>>;
}

export interface FastCall<P> {
  readonly params: P;
  readonly identity: Identity;
  readonly request: IncomingMessage;
  /** A POST's body, read whole (routes with `postBodyLimit`); undefined for the other methods. */
  readonly body?: Buffer;
}

export interface FastAnswer {
  statusCode: number;
  headers: Record<string, string>;
  /**
   * A stream is piped to the caller; a string or Buffer is sent whole with its
   * `Content-Length` (and, as Fastify's `reply.send` gives it, a `Content-Type` when the answer
   * has none); undefined: no body.
   */
  body: Readable | string | Buffer | undefined;
}

export interface FastRouteDeps {
  auth: Pick<Authenticator, 'identifyBearer'>;
  rateLimits: RateLimits | undefined;
  metrics: Metrics;
  /** The service logger (redacting): problem and stream-error lines. */
  logger: Logger;
  /** The access logger (`AccessLogController`'s): one line per answer. */
  accessLog: Logger;
  /** Our security headers, as the app's `onRequest` hook sets them on every answer. */
  ownHeaders: Readonly<Record<string, string>>;
  /** `server.trustProxy`: the client address is then the first `X-Forwarded-For` entry, as `request.ip`. */
  trustProxy: boolean;
  /** The app's request ids (`genReqId`). */
  nextRequestId: () => string;
  /** The app's body limit, for `toProblem`'s wording (no fast request has a body). */
  bodyLimit: number;
}

/** Methods a fast route may take: the ones with no body when they carry none. */
const bodylessMethods = new Set(['GET', 'HEAD', 'DELETE']);
const trustAll = () => true;
/** A Content-Length as RFC 9110 §8.6 writes it (Node has already refused a malformed or doubled one). */
const decimal = /^\d{1,10}$/;

interface Entry {
  route: FastRoute<unknown>;
  category: RateLimitCategory | null;
}

/** Whether a POST is plain for a route reading bodies up to `limit` bytes. */
function plainPost(headers: IncomingMessage['headers'], limit: number): boolean {
  const length = headers['content-length'];
  return (
    headers['transfer-encoding'] === undefined &&
    headers['content-type'] !== undefined &&
    length !== undefined &&
    decimal.test(length) &&
    Number(length) <= limit
  );
}

export class FastRoutes {
  readonly #routes: Entry[] = [];
  #deps: FastRouteDeps | undefined;

  /** Set once the app's parts exist (the rate limits are registered after Fastify is built). */
  setUp(deps: FastRouteDeps): void {
    this.#deps = deps;
  }

  add<P>(route: FastRoute<P>): void {
    const methods = route.postBodyLimit === undefined ? bodylessMethods : [...bodylessMethods, 'POST'];
    for (const method of methods) {
      // Each method's category must be the route's (it is per URL for every route today).
      if (categoryOf(method, route.url) !== categoryOf('GET', route.url))
        throw new Error(`fast route ${route.url}: its category depends on the method`);
    }
    this.#routes.push({ route: route as FastRoute<unknown>, category: categoryOf('GET', route.url) });
  }

  /** Takes `request` when a fast route matches it and it is plain; false leaves it to Fastify. */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    const deps = this.#deps;
    if (deps === undefined || this.#routes.length === 0) return false;
    const method = request.method ?? '';
    const post = method === 'POST';
    if (!post && !bodylessMethods.has(method)) return false;
    const headers = request.headers;
    if (headers.host === undefined && request.httpVersion !== '1.0') return false;
    if (
      !post &&
      (headers['transfer-encoding'] !== undefined ||
        (headers['content-length'] !== undefined && headers['content-length'] !== '0') ||
        (method === 'DELETE' && headers['content-type'] !== undefined))
    )
      return false;
    const url = request.url ?? '';
    for (const entry of this.#routes) {
      const limit = entry.route.postBodyLimit;
      if (post && (limit === undefined || !plainPost(headers, limit))) continue;
      const params = entry.route.match(method, url);
      if (params === undefined) continue;
      let authorization: string | undefined;
      try {
        authorization = singleAuthorizationOf(request);
      } catch {
        return false; // several: Fastify refuses them
      }
      if (authorization === undefined) return false; // none: Fastify tells a cookie from nothing
      this.#answer(deps, entry, params, authorization, request, response).catch((error: unknown) => {
        // #answer turns every error into an answer; should writing that fail, the socket goes.
        deps.logger.error({ err: error }, 'fast route failed');
        response.destroy();
      });
      return true;
    }
    return false;
  }

  async #answer(
    deps: FastRouteDeps,
    { route, category }: Entry,
    params: unknown,
    authorization: string,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const started = performance.now();
    const id = deps.nextRequestId();
    const method = request.method ?? '';
    if (deps.logger.isLevelEnabled('debug'))
      deps.logger.debug({ reqId: id, req: { id, method, url: request.url } }, 'incoming request');
    response.once('close', () => {
      const ms = performance.now() - started;
      deps.metrics.httpRequests.observe(
        { method, route: route.url, status: String(response.statusCode) },
        ms / 1000,
      );
      if (deps.accessLog.isLevelEnabled('info')) {
        deps.accessLog.info(
          {
            reqId: id,
            req: { id, method, url: request.url },
            res: { statusCode: response.statusCode },
            responseTime: ms,
          },
          'request completed',
        );
      }
    });
    try {
      const subject: LimitSubject = {
        ip: this.#clientAddress(deps, request),
        identity: undefined,
        routeOptions: { config: {} },
      };
      const byAddress = deps.rateLimits?.check(category, 'address', subject);
      if (byAddress !== undefined) await byAddress;
      const identity = await deps.auth.identifyBearer(authorization);
      subject.identity = identity;
      const byUser = deps.rateLimits?.check(category, 'user', subject);
      if (byUser !== undefined) await byUser;
      // After the checks, as Fastify parses a body only once its onRequest hooks passed.
      const body = method === 'POST' ? await bodyOf(request) : undefined;
      if (body === null) {
        response.destroy(); // the caller went away mid-body: nobody to answer
        return;
      }
      const answer = await route.handle(
        body === undefined ? { params, identity, request } : { params, identity, request, body },
      );
      // Our security headers under the answer's own (which override them), added to the answer's
      // object: spreading both into a new one cost more than the rest of this function.
      const headers = answer.headers;
      for (const name in deps.ownHeaders) headers[name] ??= deps.ownHeaders[name]!;
      const sent = answer.body;
      if (sent === undefined) {
        response.writeHead(answer.statusCode, headers);
        response.end();
      } else if (typeof sent === 'string' || Buffer.isBuffer(sent)) {
        headers['content-type'] = contentTypeFor(sent, headers['content-type']);
        headers['content-length'] = String(Buffer.byteLength(sent));
        response.writeHead(answer.statusCode, headers);
        response.end(method === 'HEAD' ? undefined : sent);
      } else {
        response.writeHead(answer.statusCode, headers);
        this.#stream(deps, id, sent, response);
      }
    } catch (error) {
      this.#fail(deps, route, id, request, response, error);
    }
  }

  /**
   * The answer's body to the caller; a failure after the headers went out cuts the response, and
   * a caller that goes away ends the upstream body. Not `stream.pipeline`: in Node 20 it makes an
   * AbortController per call and a DOMException when it ends, a tenth of the fast path's CPU.
   */
  #stream(deps: FastRouteDeps, id: string, body: Readable, response: ServerResponse): void {
    body.once('error', (error) => {
      deps.logger.warn(
        { reqId: id, err: error },
        'response terminated with an error with headers already sent',
      );
      response.destroy();
    });
    response.once('close', () => {
      if (!body.readableEnded) body.destroy();
    });
    body.pipe(response);
  }

  /** An error before any byte went out: the problem+json answer the app's error handler gives. */
  #fail(
    deps: FastRouteDeps,
    route: FastRoute<unknown>,
    id: string,
    request: IncomingMessage,
    response: ServerResponse,
    error: unknown,
  ): void {
    const problem: Problem = toProblem(error as Error, deps.bodyLimit);
    logProblem(deps.logger.child({ reqId: id }) as FastifyBaseLogger, error, problem);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const url = request.url ?? '';
    const body = JSON.stringify(problem.toBody(url.split('?')[0]));
    response.writeHead(problem.status, {
      ...deps.ownHeaders,
      ...problemHeaders(problem),
      ...(problem.status === 401 ? route.challengeHeaders : undefined),
      'content-type': 'application/problem+json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  /** The client address as Fastify's `request.ip` gives it. */
  #clientAddress(deps: FastRouteDeps, request: IncomingMessage): string {
    if (!deps.trustProxy) return request.socket.remoteAddress ?? '';
    const all = proxyAddr.all(request, trustAll);
    return all[all.length - 1] ?? '';
  }
}

/**
 * The Content-Type Fastify's `reply.send` gives a whole body: its own for one without, and
 * `charset=utf-8` added to a JSON type a string goes out as.
 */
function contentTypeFor(body: string | Buffer, type: string | undefined): string {
  if (type === undefined)
    return typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
  if (typeof body !== 'string' || !type.toLowerCase().includes('json') || /;\s*charset=/i.test(type))
    return type;
  return `${type}; charset=utf-8`;
}

/**
 * A plain POST's body (its length already checked against the route's limit), or null when the
 * request ended early: Node's parser delivers exactly `Content-Length` bytes or fails.
 */
function bodyOf(request: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    request.once('error', () => resolve(null));
    request.once('close', () => {
      if (!request.complete) resolve(null);
    });
  });
}
