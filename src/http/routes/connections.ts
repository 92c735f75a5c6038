import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mayAccess } from '../../connections/access.js';
import { disconnect } from '../../connections/disconnect.js';
import type { Identity } from '../../identity/identity.js';
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
  /** The user's connection; 404 when missing, another user's, or of an integration outside the user's groups. */
  const find = async (identity: Identity, params: unknown) => {
    const parsed = idParams.safeParse(params);
    if (!parsed.success) throw connectionNotFound();
    const row = await ctx.connections.findForUser(identity.userId, parsed.data.id);
    if (row === undefined || !(await visible(identity, row.integration_id))) throw connectionNotFound();
    return row;
  };
  const visible = async (identity: Identity, integrationId: string) => {
    const integration = await ctx.catalog.getIntegration(integrationId);
    return integration === undefined || mayAccess(integration, identity.groups);
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
    const [rows, integrations] = await Promise.all([
      ctx.connections.listForUser(identity.userId),
      ctx.catalog.listIntegrations({ includeDisabled: true }),
    ]);
    const hidden = new Set(integrations.filter((i) => !mayAccess(i, identity.groups)).map((i) => i.id));
    return rows.filter((r) => !hidden.has(r.integration_id)).map(toConnectionView);
  });

  app.get('/api/v1/connections/:id', async (request) => {
    const identity = requireUser(request, publicUrl);
    return toConnectionView(await find(identity, request.params));
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
      groups: identity.groups,
    });
    return reply.code(201).send({ authorizationUrl: url.href });
  });

  app.post('/api/v1/connections/:id/reconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    const body = parseInput(reconnectBody, request.body ?? undefined, 'body');
    const url = await ctx.flow.start({
      userId: identity.userId,
      integrationId: row.integration_id,
      returnTo: parseReturnTo(body?.returnTo, publicUrl),
      connectionId: row.id,
      browserBinding: identity.browserBinding ?? null,
      groups: identity.groups,
    });
    return reply.code(201).send({ authorizationUrl: url.href });
  });

  app.delete('/api/v1/connections/:id', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.code(204).send();
  });

  // The Integrations page's buttons: plain form posts with the CSRF token, answered by redirects.
  app.post('/connections/:id/reconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    const url = await ctx.flow.start({
      userId: identity.userId,
      integrationId: row.integration_id,
      returnTo: '/',
      connectionId: row.id,
      browserBinding: identity.browserBinding ?? null,
      groups: identity.groups,
    });
    return reply.redirect(url.href, 303);
  });

  app.post('/connections/:id/disconnect', async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.redirect(withOutcome('/', 'disconnected'), 303);
  });
}
