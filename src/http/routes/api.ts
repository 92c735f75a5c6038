import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listUserIntegrations } from '../../connections/integration-status.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, problem, withSpec } from '../openapi/route-spec.js';
import { integrationSchema, meSchema } from '../openapi/schemas.js';

export const getMe = defineRoute({
  method: 'GET',
  url: '/api/v1/me',
  operationId: 'getMe',
  summary: 'Who the credential signs in as',
  tags: ['Session'],
  auth: 'user',
  responses: { 200: { description: 'The signed-in user', json: meSchema }, 401: problem('Not signed in') },
});

export const listIntegrations = defineRoute({
  method: 'GET',
  url: '/api/v1/integrations',
  operationId: 'listIntegrations',
  summary: 'The integrations the user may connect, each with its status',
  tags: ['Integrations'],
  auth: 'user',
  responses: {
    200: { description: 'Enabled integrations, by name', json: z.array(integrationSchema) },
    401: problem('Not signed in'),
  },
});

/** The user API that needs nothing beyond the catalog: `/api/v1/me`, `/api/v1/integrations`. */
export function registerApiRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  app.get(getMe.url, withSpec(getMe), async (request) => {
    const identity = requireUser(request, publicUrl);
    return {
      id: identity.userId,
      name: identity.name,
      role: identity.role,
      ...(identity.via === 'session' ? { csrfToken: identity.csrfToken } : {}),
    };
  });

  app.get(listIntegrations.url, withSpec(listIntegrations), async (request) => {
    const identity = requireUser(request, publicUrl);
    const list = await listUserIntegrations(ctx.catalog, ctx.connections, identity);
    return list.map((i) => ({
      id: i.id,
      name: i.name,
      kind: i.kind,
      status: i.status,
      ...(i.connectionId === undefined ? {} : { connectionId: i.connectionId }),
    }));
  });
}
