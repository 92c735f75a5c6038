import type { FastifyInstance } from 'fastify';
import { constantTimeEqual } from '../../identity/session-service.js';
import { pingStore } from '../../store/database.js';
import { script } from '../../ui/script.js';
import { stylesheet } from '../../ui/styles.js';
import { requireAdmin, singleAuthorization } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, problem, withSpec } from '../openapi/route-spec.js';
import { healthSchema } from '../openapi/schemas.js';
import { Problem, unauthenticated } from '../problem.js';

const health = defineRoute({
  method: 'GET',
  url: '/healthz',
  operationId: 'getHealth',
  summary: 'Liveness plus a database round trip',
  tags: ['Operations'],
  auth: 'none',
  responses: {
    200: { description: 'Up, and the database answers', json: healthSchema },
    503: problem('service_unavailable: the database does not answer'),
  },
});

const metrics = defineRoute({
  method: 'GET',
  url: '/metrics',
  operationId: 'getMetrics',
  summary: 'Prometheus metrics',
  description: 'For the configured scrape token (`metrics.token`) or an administrator.',
  tags: ['Operations'],
  auth: 'operator',
  responses: {
    200: { description: 'Prometheus text exposition format', contentType: 'text/plain' },
    401: problem('No or a wrong credential'),
    403: problem('Signed in, but not an administrator'),
  },
});

/**
 * `GET /healthz` (liveness plus a database round trip, for anyone) and `GET /metrics`
 * (Prometheus text, for the scrape token or an administrator), and the page assets.
 */
export function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get(health.url, withSpec(health), async () => {
    try {
      await pingStore(ctx.store);
    } catch {
      throw new Problem(503, 'service_unavailable', 'Service Unavailable', 'The database does not answer.');
    }
    return { status: 'ok', database: ctx.store.kind };
  });

  // Operators only (contract §5): the configured scrape token, or an administrator.
  const scrapeToken = ctx.config.metrics.token;
  app.get(metrics.url, withSpec(metrics, { config: { scrapeToken: true } }), async (request, reply) => {
    const header = singleAuthorization(request) ?? '';
    const bearer = header.toLowerCase().startsWith('bearer ');
    const byToken =
      scrapeToken !== undefined && bearer && constantTimeEqual(header.slice('bearer '.length), scrapeToken);
    if (!byToken) {
      // A bearer that is neither the scrape token nor a sign-in: say which credential was wrong.
      if (header !== '' && request.identity === undefined) {
        throw unauthenticated(
          scrapeToken === undefined
            ? 'The bearer token is invalid or expired (no scrape token is configured).'
            : 'The scrape token is wrong, and the bearer is not a valid sign-in token either.',
        );
      }
      requireAdmin(request, ctx.config.server.publicUrl, 'forbidden');
    }
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/assets/app.js', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').type('text/javascript; charset=utf-8');
    return script;
  });

  app.get('/assets/app.css', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').type('text/css; charset=utf-8');
    return stylesheet;
  });
}
