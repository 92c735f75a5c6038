/**
 * Routes answered before Fastify sees the request: the proxy's plain calls, its hot path.
 *
 * Fastify's request cycle (routing, the hook chain, the reply object, the request logger) cost
 * about a tenth of a proxied call's CPU, as much as the access line and the rate limits together.
 * A fast route takes only the plain case: a bodyless request (GET, HEAD, DELETE without a body)
 * with exactly one `Authorization` header and a Host, on a URL its own pattern accepts. Anything
 * else (no or several credentials, a body, an encoded or unusual path, TRACE) goes to Fastify and
 * its registered route, which stays the full implementation and the one the OpenAPI document
 * lists. On the fast path the request meets what the app's hooks do, in the same order: our
 * security headers, the per-address limit, the bearer's verification, the per-user limit; errors
 * become the same problem+json answers; every answer leaves the same access line and metric.
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
  /** Answers a verified bearer caller; throws Problems, as a Fastify handler does. */
  handle(call: FastCall<P>): Promise<FastAnswer>;
  /** Extra headers on this route's 401s (the proxy's Bearer challenge). */
  readonly challengeHeaders?: Readonly<Record<string, string>>;
}

export interface FastCall<P> {
  readonly params: P;
  readonly identity: Identity;
  readonly request: IncomingMessage;
}

export interface FastAnswer {
  statusCode: number;
  headers: Record<string, string>;
  /** Streamed to the caller; undefined: no body. */
  body: Readable | undefined;
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

interface Entry {
  route: FastRoute<unknown>;
  category: RateLimitCategory | null;
}

export class FastRoutes {
  readonly #routes: Entry[] = [];
  #deps: FastRouteDeps | undefined;

  /** Set once the app's parts exist (the rate limits are registered after Fastify is built). */
  setUp(deps: FastRouteDeps): void {
    this.#deps = deps;
  }

  add<P>(route: FastRoute<P>): void {
    for (const method of bodylessMethods) {
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
    if (!bodylessMethods.has(method)) return false;
    const headers = request.headers;
    if (
      headers['transfer-encoding'] !== undefined ||
      (headers['content-length'] !== undefined && headers['content-length'] !== '0') ||
      (method === 'DELETE' && headers['content-type'] !== undefined) ||
      (headers.host === undefined && request.httpVersion !== '1.0')
    )
      return false;
    const url = request.url ?? '';
    for (const entry of this.#routes) {
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
      const answer = await route.handle({ params, identity, request });
      // Our security headers under the answer's own (which override them), added to the answer's
      // object: spreading both into a new one cost more than the rest of this function.
      const headers = answer.headers;
      for (const name in deps.ownHeaders) headers[name] ??= deps.ownHeaders[name]!;
      response.writeHead(answer.statusCode, headers);
      if (answer.body === undefined) response.end();
      else this.#stream(deps, id, answer.body, response);
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
