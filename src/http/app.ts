import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import { guardJsonBody } from './body-types.js';
import { createClientErrorHandler, createConnectHandler, createExpectationHandler } from './client-errors.js';
import type { AppContext } from './context.js';
import { applyCors } from './cors.js';
import { AccessLogController } from './log-controller.js';
import { RouteTable } from './openapi/route-table.js';
import { Problem } from './problem.js';
import { registerRateLimits } from './rate-limits.js';
import { lazyRequestLoggerFactory } from './request-logger.js';
import { RouteMethods } from './route-methods.js';
import { registerApiRoutes } from './routes/api.js';
import { registerEmbedRoutes } from './routes/embed.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerOpenApiRoutes } from './routes/openapi.js';
import { registerPageRoutes } from './routes/pages.js';
import { registerSessionRoutes } from './routes/session.js';
import { securityHeadersFor } from './security-headers.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every registered route with its OpenAPI spec, if documented (see `documented`). */
    routeTable: RouteTable;
  }
}

/** Extra route sets later capabilities plug in (connect flow, proxy, MCP gateway, admin). */
export type RouteRegistrar = (app: FastifyInstance, ctx: AppContext) => void | Promise<void>;

/**
 * Builds the Fastify application: security headers, identity, problem+json errors, metrics,
 * then the routes. Listening is the caller's business.
 */
export async function buildApp(
  ctx: AppContext,
  extraRoutes: RouteRegistrar[] = [],
): Promise<FastifyInstance> {
  // Request ids: unique across instances (a random prefix per process) without a UUID per request.
  const idPrefix = crypto.randomUUID().slice(0, 8);
  let requestCount = 0;
  const server = ctx.config.server;
  const logger = ctx.logger as FastifyBaseLogger;
  const app = Fastify({
    loggerInstance: logger,
    trustProxy: server.trustProxy,
    bodyLimit: server.bodyLimitBytes,
    // Slow clients are bounded (RFC 9112 §9.8 leaves it to us): headers, then the whole request,
    // then keep-alive idling. A response is never cut: SSE and streamed proxy answers last, so
    // there is no socket idle timeout (Fastify's connectionTimeout stays 0).
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    http: {
      headersTimeout: server.headersTimeoutMs,
      requestTimeout: server.requestTimeoutMs,
      // Node checks the two timeouts on this interval (default 30 s, far coarser than the limits).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(server.headersTimeoutMs / 2))),
      // A missing Host is refused below, as problem+json, instead of by Node's bare 400.
      requireHostHeader: false,
    },
    clientErrorHandler: createClientErrorHandler(logger, server),
    genReqId: () => `${idPrefix}-${(++requestCount).toString(36)}`,
    logController: new AccessLogController(ctx.logger),
    childLoggerFactory: lazyRequestLoggerFactory,
    // On close, end every connection (keep-alive and event streams included) instead of waiting on them.
    forceCloseConnections: true,
    // A URL the router cannot decode (invalid percent-encoding or UTF-8) is a problem+json 400 too.
    frameworkErrors: (error, _request, reply) => {
      const problem =
        (error as { code?: string }).code === 'FST_ERR_BAD_URL'
          ? new Problem(400, 'bad_request', 'Bad Request', 'The request URL is not valid.')
          : new Problem(400, 'bad_request', 'Bad Request');
      return (reply as FastifyReply).code(400).type('application/problem+json').send(problem.toBody());
    },
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  // Nothing of ours reads plain text: such a body is a 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  const rateLimits = await registerRateLimits(app, ctx.config.rateLimits, ctx.metrics);

  const routeMethods = new RouteMethods();
  const routeTable = new RouteTable();
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    routeMethods.add(route.url, route.method);
    routeTable.add(route);
    guardJsonBody(route);
  });
  app.server.on(
    'connect',
    createConnectHandler(logger, (path) => routeMethods.allowedFor(path)),
  );
  app.server.on('checkExpectation', createExpectationHandler(logger));

  const embedOrigins = new Set(server.embedOrigins);
  const ownHeaders = securityHeadersFor(server.publicUrl);
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(ownHeaders);
    // A listed origin's preflight is answered here, before identity (it carries no credentials).
    if (applyCors(embedOrigins, request, reply)) return reply;
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      throw new Problem(400, 'bad_request', 'Bad Request', 'The Host header is missing (RFC 9112 §3.2).');
    }
    // Per address before identity, so a flood is refused before any JWT or session work.
    const byAddress = rateLimits?.byAddress(request, reply);
    if (byAddress !== undefined) await byAddress;
    try {
      request.identity = await ctx.auth.identify(request);
    } catch (error) {
      // A route that takes a bearer of its own (the metrics scrape token) judges it itself.
      if ((request.routeOptions.config as { scrapeToken?: boolean }).scrapeToken !== true) throw error;
    }
    const byUser = rateLimits?.byUser(request, reply);
    if (byUser !== undefined) await byUser;
  });

  app.addHook('onResponse', (request, reply, done) => {
    ctx.metrics.httpRequests.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.setErrorHandler(async (error: FastifyError | Problem, request, reply) => {
    const problem = toProblem(error, request.routeOptions.bodyLimit ?? server.bodyLimitBytes);
    if (typeof problem.extra.retryAfterSeconds === 'number')
      reply.header('retry-after', String(problem.extra.retryAfterSeconds));
    if (problem.status >= 500 && !(error instanceof Problem))
      request.log.error({ err: error }, 'request failed');
    else if (problem.status >= 500)
      request.log.warn({ problem: problem.code, status: problem.status }, 'request failed');
    else request.log.info({ problem: problem.code, status: problem.status }, 'request refused');
    return reply
      .code(problem.status)
      .type('application/problem+json')
      .send(problem.toBody(request.url.split('?')[0]));
  });

  // No route for this method and path: 405 with `Allow` when the path has routes, else 404.
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routeMethods.allowedFor(path);
    if (allowed.length > 0) {
      const problem = new Problem(
        405,
        'method_not_allowed',
        'Method Not Allowed',
        `${request.method} is not allowed here; allowed: ${allowed.join(', ')}.`,
      );
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .type('application/problem+json')
        .send(problem.toBody());
    }
    const problem = new Problem(404, 'not_found', 'Not Found', `No route ${request.method} ${path}.`);
    return reply.code(404).type('application/problem+json').send(problem.toBody());
  });

  registerHealthRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerPageRoutes(app, ctx);
  registerApiRoutes(app, ctx);
  registerEmbedRoutes(app, ctx);
  registerOpenApiRoutes(app, ctx, routeTable);
  for (const register of extraRoutes) await register(app, ctx);
  return app;
}

/** Only our own Problems reach clients as they are; framework errors are mapped, others hidden. */
function toProblem(error: FastifyError | Problem, bodyLimit: number): Problem {
  if (error instanceof Problem) return error;
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new Problem(
      413,
      'payload_too_large',
      'Content Too Large',
      `The request body is larger than the limit of ${bodyLimit} bytes.`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new Problem(415, 'unsupported_media_type', 'Unsupported Media Type', 'Send application/json.');
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return new Problem(400, 'bad_request', 'Bad Request', 'The request body is empty or malformed.');
  }
  if ((error as FastifyError).statusCode === 400 || error instanceof SyntaxError) {
    return new Problem(400, 'bad_request', 'Bad Request', 'The request body is not valid JSON.');
  }
  return new Problem(500, 'internal_error', 'Internal Server Error', 'Something went wrong on our side.');
}
