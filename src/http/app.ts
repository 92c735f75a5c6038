import { createServer } from 'node:http';
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
import { logProblem, problemHeaders, toProblem } from './error-answer.js';
import { FastRoutes } from './fast-routes.js';
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
    /** Routes whose plain requests are answered before Fastify routes them (`fast-routes.ts`). */
    fastRoutes: FastRoutes;
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
  const nextRequestId = () => `${idPrefix}-${(++requestCount).toString(36)}`;
  const accessLog = new AccessLogController(ctx.logger);
  const server = ctx.config.server;
  const logger = ctx.logger as FastifyBaseLogger;
  const fastRoutes = new FastRoutes();
  const app = Fastify({
    loggerInstance: logger,
    trustProxy: server.trustProxy,
    bodyLimit: server.bodyLimitBytes,
    // Our own server, so the fast routes see a request before Fastify does; it gets the options
    // Fastify would give its own.
    serverFactory: (handler) => {
      const http = createServer(
        {
          headersTimeout: server.headersTimeoutMs,
          requestTimeout: server.requestTimeoutMs,
          // Node checks the two timeouts on this interval (default 30 s, far coarser than the limits).
          connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(server.headersTimeoutMs / 2))),
          // A missing Host is refused below, as problem+json, instead of by Node's bare 400.
          requireHostHeader: false,
        },
        (request, response) => {
          if (!fastRoutes.handle(request, response)) handler(request, response);
        },
      );
      // Slow clients are bounded (RFC 9112 §9.8 leaves it to us): headers, then the whole request,
      // then keep-alive idling. A response is never cut: SSE and streamed proxy answers last, so
      // there is no socket idle timeout.
      http.requestTimeout = server.requestTimeoutMs;
      http.keepAliveTimeout = server.keepAliveTimeoutMs;
      http.setTimeout(0);
      return http;
    },
    clientErrorHandler: createClientErrorHandler(logger, server),
    genReqId: nextRequestId,
    logController: accessLog,
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
  const ownHeaders = securityHeadersFor(server.publicUrl);
  fastRoutes.setUp({
    auth: ctx.auth,
    rateLimits,
    metrics: ctx.metrics,
    logger: ctx.logger,
    accessLog: accessLog.logger,
    ownHeaders,
    trustProxy: server.trustProxy,
    nextRequestId,
    bodyLimit: server.bodyLimitBytes,
  });
  app.decorate('fastRoutes', fastRoutes);

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
    reply.headers(problemHeaders(problem));
    logProblem(request.log, error, problem);
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
