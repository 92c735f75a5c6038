import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { disconnect } from '../../connections/disconnect.js';
import { toConnectionView } from '../../store/repos/connections.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { connectionNotFound } from '../problem.js';
import { parseReturnTo } from '../return-to.js';
import { integrationIdSchema, parseInput } from '../validate.js';
import { withOutcome } from './connect.js';

const idParams = z.strictObject({ id: z.uuid() });
const createBody = z.strictObject({
  integration: integrationIdSchema(),
  returnTo: z.string().optional(),
});
const reconnectBody = z.strictObject({ returnTo: z.string().optional() }).optional();

/**
 * The connections API (`/api/v1/connections…`) and the Integrations page's form posts
 * (`/connections/:id/reconnect|disconnect`). Another user's connection is a 404, like a missing one.
 */
export function registerConnectionRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const find = async (userId: string, params: unknown) => {
    const parsed = idParams.safeParse(params);
    if (!parsed.success) throw connectionNotFound();
    const row = await ctx.connections.findForUser(userId, parsed.data.id);
    if (row === undefined) throw connectionNotFound();
    return row;
  };
  const disconnectDeps = {
    store: ctx.store,
    catalog: ctx.catalog,
    clients: ctx.providers,
    sealer: ctx.sealer,
    audit: ctx.audit,
    webhooks: ctx.webhooks,
    notifications: ctx.notifications,
    revocations: ctx.revocations,
    logger: ctx.logger,
    cache: ctx.connectionCache,
    clock: ctx.clock,
  };

  app.get('/api/v1/connections', async (request) => {
    const identity = requireUser(request, publicUrl);
    return (await ctx.connections.listForUser(identity.userId)).map(toConnectionView);
  });

  app.get('/api/v1/connections/:id', async (request) => {
    const identity = requireUser(request, publicUrl);
    return toConnectionView(await find(identity.userId, request.params));
  });

  app.post('/api/v1/connections', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const body = parseInput(createBody, request.body ?? {}, 'body');
    const returnTo = parseReturnTo(body.returnTo, publicUrl);
    const existing = await ctx.connections.findByUserAndIntegration(identity.userId, body.integration);
    const url = await ctx.flow.start({
      userId: identity.userId,
      integrationId: body.integration,
      returnTo,
      ...(existing === undefined ? {} : { connectionId: existing.id }),
      // A browser's own API call (session cookie + CSRF token) is bound to it; a bearer's is not.
      browserBinding: identity.browserBinding ?? null,
    });
    return reply.code(201).send({ authorizationUrl: url.href });
  });

  app.post('/api/v1/connections/:id/reconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity.userId, request.params);
    const body = parseInput(reconnectBody, request.body ?? undefined, 'body');
    const url = await ctx.flow.start({
      userId: identity.userId,
      integrationId: row.integration_id,
      returnTo: parseReturnTo(body?.returnTo, publicUrl),
      connectionId: row.id,
      browserBinding: identity.browserBinding ?? null,
    });
    return reply.code(201).send({ authorizationUrl: url.href });
  });

  app.delete('/api/v1/connections/:id', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity.userId, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.code(204).send();
  });

  // The Integrations page's buttons: plain form posts with the CSRF token, answered by redirects.
  app.post('/connections/:id/reconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity.userId, request.params);
    const url = await ctx.flow.start({
      userId: identity.userId,
      integrationId: row.integration_id,
      returnTo: '/',
      connectionId: row.id,
      browserBinding: identity.browserBinding ?? null,
    });
    return reply.redirect(url.href, 303);
  });

  app.post('/connections/:id/disconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity.userId, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.redirect(withOutcome('/', 'disconnected'), 303);
  });
}
