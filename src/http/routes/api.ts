import type { FastifyInstance } from 'fastify';
import { listUserIntegrations } from '../../connections/integration-status.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';

/** The user API that needs nothing beyond the catalog: `/api/v1/me`, `/api/v1/integrations`. */
export function registerApiRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  app.get('/api/v1/me', async (request) => {
    const identity = requireUser(request, publicUrl);
    return {
      id: identity.userId,
      name: identity.name,
      role: identity.role,
      ...(identity.via === 'session' ? { csrfToken: identity.csrfToken } : {}),
    };
  });

  app.get('/api/v1/integrations', async (request) => {
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
