import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mayAccess } from '../../connections/access.js';
import { disconnect } from '../../connections/disconnect.js';
import type { Identity } from '../../identity/identity.js';
import { toConnectionView } from '../../store/repos/connections.js';
import { requireUser } from '../auth.js';
import { type AppContext, disconnectDepsOf } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { authorizationUrlSchema, connectionSchema } from '../openapi/schemas.js';
import { connectionNotFound } from '../problem.js';
import { parseReturnTo } from '../return-to.js';
import { integrationIdSchema } from '../validate.js';
import { withOutcome } from './connect.js';

const idParams = z.strictObject({ id: z.uuid().describe('The connection id') });
const returnTo = z
  .string()
  .optional()
  .describe('A same-origin path the browser returns to after the provider (default `/`)');
const notFound = problem('No such connection, or not this user’s (the two are indistinguishable)');
const flowFailures = {
  404: problem('integration_not_found: no such integration, or not offered to this user'),
  409: problem('integration_disabled: an administrator disabled it'),
  502: problem('provider_unavailable / mcp_discovery_failed: the provider could not be reached or read'),
};

export const listConnections = defineRoute({
  method: 'GET',
  url: '/api/v1/connections',
  operationId: 'listConnections',
  summary: 'The user’s connections (never a token)',
  tags: ['Connections'],
  auth: 'user',
  responses: { 200: { description: 'Connections', json: z.array(connectionSchema) } },
});

export const getConnection = defineRoute({
  method: 'GET',
  url: '/api/v1/connections/:id',
  operationId: 'getConnection',
  summary: 'One of the user’s connections',
  tags: ['Connections'],
  auth: 'user',
  params: idParams,
  responses: { 200: { description: 'The connection', json: connectionSchema }, 404: notFound },
});

export const createConnection = defineRoute({
  method: 'POST',
  url: '/api/v1/connections',
  operationId: 'createConnection',
  summary: 'Start connecting an integration: the URL of the provider’s sign-in',
  description:
    'The same flow as the Connect button, for API-driven clients. When the user already has a ' +
    'connection for the integration, success replaces its tokens (same connection id).',
  tags: ['Connections'],
  auth: 'user',
  body: z.strictObject({ integration: integrationIdSchema().describe('The integration id'), returnTo }),
  responses: {
    201: { description: 'Where to send the user', json: authorizationUrlSchema },
    400: problem('validation_failed or return_to_invalid'),
    ...flowFailures,
  },
});

export const reconnectConnection = defineRoute({
  method: 'POST',
  url: '/api/v1/connections/:id/reconnect',
  operationId: 'reconnectConnection',
  summary: 'Start reconnecting: success replaces the tokens of the same connection',
  tags: ['Connections'],
  auth: 'user',
  params: idParams,
  body: z.strictObject({ returnTo }).optional(),
  responses: {
    201: { description: 'Where to send the user', json: authorizationUrlSchema },
    400: problem('validation_failed or return_to_invalid'),
    ...flowFailures,
    404: notFound,
  },
});

export const deleteConnection = defineRoute({
  method: 'DELETE',
  url: '/api/v1/connections/:id',
  operationId: 'deleteConnection',
  summary: 'Disconnect: revoke at the provider where it can, delete the tokens',
  tags: ['Connections'],
  auth: 'user',
  params: idParams,
  responses: { 204: { description: 'Deleted' }, 404: notFound },
});

const formReconnect = defineRoute({
  method: 'POST',
  url: '/connections/:id/reconnect',
  operationId: 'reconnectConnectionForm',
  summary: 'The Integrations page’s Reconnect button: 303 to the provider',
  tags: ['Browser flow'],
  auth: 'session',
  params: idParams,
  bodyType: 'form',
  body: z.object({ _csrf: z.string().describe('The session’s CSRF token') }),
  responses: { 303: { description: 'To the provider’s sign-in', headers: { location: 'The provider URL' } } },
});

const formDisconnect = defineRoute({
  method: 'POST',
  url: '/connections/:id/disconnect',
  operationId: 'disconnectConnectionForm',
  summary: 'The Integrations page’s Disconnect button: 303 back to `/`',
  tags: ['Browser flow'],
  auth: 'session',
  params: idParams,
  bodyType: 'form',
  body: z.object({ _csrf: z.string().describe('The session’s CSRF token') }),
  responses: {
    303: { description: 'To `/?outcome=disconnected`', headers: { location: '`/?outcome=disconnected`' } },
  },
});

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
  const disconnectDeps = disconnectDepsOf(ctx);

  app.get(listConnections.url, withSpec(listConnections), async (request) => {
    const identity = requireUser(request, publicUrl);
    const [rows, integrations] = await Promise.all([
      ctx.connections.listForUser(identity.userId),
      ctx.catalog.listIntegrations({ includeDisabled: true }),
    ]);
    const hidden = new Set(integrations.filter((i) => !mayAccess(i, identity.groups)).map((i) => i.id));
    return rows.filter((r) => !hidden.has(r.integration_id)).map(toConnectionView);
  });

  app.get(getConnection.url, withSpec(getConnection), async (request) => {
    const identity = requireUser(request, publicUrl);
    return toConnectionView(await find(identity, request.params));
  });

  app.post(createConnection.url, withSpec(createConnection), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const { body } = parseRequest(createConnection, request);
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

  app.post(reconnectConnection.url, withSpec(reconnectConnection), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    const { body } = parseRequest(reconnectConnection, request);
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

  app.delete(deleteConnection.url, withSpec(deleteConnection), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.code(204).send();
  });

  // The Integrations page's buttons: plain form posts with the CSRF token, answered by redirects.
  app.post(formReconnect.url, withSpec(formReconnect), async (request, reply) => {
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

  app.post(formDisconnect.url, withSpec(formDisconnect), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const row = await find(identity, request.params);
    await disconnect(disconnectDeps, row, identity.userId);
    return reply.redirect(withOutcome('/', 'disconnected'), 303);
  });
}
