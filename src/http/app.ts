import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { AppContext } from './context.js';
import { AccessLogController } from './log-controller.js';
import { Problem } from './problem.js';
import { lazyRequestLoggerFactory } from './request-logger.js';
import { registerApiRoutes } from './routes/api.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerPageRoutes } from './routes/pages.js';
import { registerSessionRoutes } from './routes/session.js';

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
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    trustProxy: ctx.config.server.trustProxy,
    bodyLimit: 1024 * 1024,
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

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own form posts.
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
    reply.header(
      'content-security-policy',
      "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' *; frame-ancestors 'none'; base-uri 'none'; script-src 'self'; connect-src 'self'",
    );
    reply.header('cache-control', 'no-store');
    try {
      request.identity = await ctx.auth.identify(request);
    } catch (error) {
      // A route that takes a bearer of its own (the metrics scrape token) judges it itself.
      if ((request.routeOptions.config as { scrapeToken?: boolean }).scrapeToken !== true) throw error;
    }
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
    const problem = toProblem(error);
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

  app.setNotFoundHandler(async (request, reply) => {
    const problem = new Problem(
      404,
      'not_found',
      'Not Found',
      `No route ${request.method} ${request.url.split('?')[0]}.`,
    );
    return reply.code(404).type('application/problem+json').send(problem.toBody());
  });

  registerHealthRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerPageRoutes(app, ctx);
  registerApiRoutes(app, ctx);
  for (const register of extraRoutes) await register(app, ctx);
  return app;
}

/** Only our own Problems reach clients as they are; framework errors are mapped, others hidden. */
function toProblem(error: FastifyError | Problem): Problem {
  if (error instanceof Problem) return error;
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new Problem(413, 'payload_too_large', 'Payload Too Large');
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
