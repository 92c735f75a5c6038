import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { previewMcpServer } from '../../oauth/mcp/preview.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { withSpec } from '../openapi/route-spec.js';
import { parseInput } from '../validate.js';
import { catalogActions, etagOf, fieldProblem } from './admin-catalog-actions.js';
import { integrationView, isPlainObject, mcpServerView, providerView } from './admin-catalog-entries.js';
import { catalogIdParams, deleteQuery, mcpPreviewBody } from './admin-catalog-schemas.js';
import { integrationRoutes, mcpPreview, mcpServerRoutes, providerRoutes } from './admin-catalog-specs.js';

/**
 * `/api/v1/admin/{providers,integrations,mcp-servers}`: the run-time catalog's write side.
 * Admins only (a signed-in non-admin gets 404, no credentials 401); secrets write-only; entries
 * from the config file read-only; every change audited with the admin as actor, in the same
 * transaction. Every instance sees a change within `catalogCacheMs` (its caches expire). The
 * checks and writes are `catalogActions` (admin-catalog-actions.ts), shared with the console.
 */
export function registerAdminCatalogRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const actions = catalogActions(ctx);
  const admin = (request: FastifyRequest) => ({ userId: requireAdmin(request, publicUrl).userId });
  const body = (request: FastifyRequest): Record<string, unknown> => {
    if (!isPlainObject(request.body)) throw fieldProblem('body', 'must be a JSON object');
    return request.body;
  };
  const idOf = (request: FastifyRequest) => parseInput(catalogIdParams, request.params, 'path').id;
  /** `If-Match` when sent (a list is no version this API gave out: it matches nothing). */
  const ifMatchOf = (request: FastifyRequest): string | undefined => {
    const header = request.headers['if-match'];
    return header === undefined ? undefined : String(header);
  };
  const sendEntry = (reply: FastifyReply, status: number, updatedAt: number, view: object) =>
    reply.code(status).header('etag', etagOf(updatedAt)).send(view);

  // ---------------------------------------------------------------------------------------------
  // providers

  app.get(providerRoutes.list.url, withSpec(providerRoutes.list), async (request) => {
    admin(request);
    const providers = await ctx.catalog.listProviders();
    return Promise.all(
      providers.map(async (p) => providerView(p, await actions.credentialsOf('providers', p.id))),
    );
  });

  app.get(providerRoutes.get.url, withSpec(providerRoutes.get), async (request, reply) => {
    admin(request);
    const p = await actions.providerOr404(idOf(request));
    return sendEntry(
      reply,
      200,
      p.updatedAt,
      providerView(p, await actions.credentialsOf('providers', p.id)),
    );
  });

  app.post(providerRoutes.create.url, withSpec(providerRoutes.create), async (request, reply) => {
    const actor = admin(request);
    const p = await actions.createProvider(actor, body(request));
    reply.header('location', `/api/v1/admin/providers/${p.id}`);
    return sendEntry(
      reply,
      201,
      p.updatedAt,
      providerView(p, await actions.credentialsOf('providers', p.id)),
    );
  });

  app.patch(providerRoutes.update.url, withSpec(providerRoutes.update), async (request, reply) => {
    const actor = admin(request);
    const id = idOf(request);
    const { record: p, unusableConnections } = await actions.updateProvider(
      actor,
      id,
      request.body,
      ifMatchOf(request),
    );
    return sendEntry(reply, 200, p.updatedAt, {
      ...providerView(p, await actions.credentialsOf('providers', id)),
      ...(unusableConnections === undefined ? {} : { unusableConnections }),
    });
  });

  app.delete(providerRoutes.remove.url, withSpec(providerRoutes.remove), async (request, reply) => {
    const actor = admin(request);
    await actions.deleteProvider(actor, idOf(request));
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------------------------------------
  // integrations and MCP servers (one table, one id namespace; each route sees its own kind)

  const discoveryOf = async (id: string) => (await ctx.mcpDiscovery.list()).get(id);
  const view = async (i: IntegrationRecord) =>
    i.kind === 'mcp' ? mcpServerView(i, await discoveryOf(i.id)) : integrationView(i);

  const routes = [
    { kind: 'oauth', path: '/api/v1/admin/integrations', specs: integrationRoutes },
    { kind: 'mcp', path: '/api/v1/admin/mcp-servers', specs: mcpServerRoutes },
  ] as const;
  for (const { kind, path, specs } of routes) {
    app.get(path, withSpec(specs.list), async (request) => {
      admin(request);
      const all = await ctx.catalog.listIntegrations({ includeDisabled: true });
      const discovery = kind === 'mcp' ? await ctx.mcpDiscovery.list() : undefined;
      return all
        .filter((i) => i.kind === kind)
        .map((i) => (kind === 'mcp' ? mcpServerView(i, discovery?.get(i.id)) : integrationView(i)));
    });

    app.get(`${path}/:id`, withSpec(specs.get), async (request, reply) => {
      admin(request);
      const i = await actions.entryOr404(kind, idOf(request));
      return sendEntry(reply, 200, i.updatedAt, await view(i));
    });

    app.post(path, withSpec(specs.create), async (request, reply) => {
      const actor = admin(request);
      const i = await actions.createEntry(kind, actor, body(request));
      reply.header('location', `${path}/${i.id}`);
      return sendEntry(reply, 201, i.updatedAt, await view(i));
    });

    app.patch(`${path}/:id`, withSpec(specs.update), async (request, reply) => {
      const actor = admin(request);
      const { record: i, unusableConnections } = await actions.updateEntry(
        kind,
        actor,
        idOf(request),
        request.body,
        ifMatchOf(request),
      );
      return sendEntry(reply, 200, i.updatedAt, {
        ...(await view(i)),
        ...(unusableConnections === undefined ? {} : { unusableConnections }),
      });
    });

    app.delete(`${path}/:id`, withSpec(specs.remove), async (request, reply) => {
      const actor = admin(request);
      const id = idOf(request);
      const { confirm } = parseInput(deleteQuery, request.query, 'query');
      await actions.deleteEntry(kind, actor, id, confirm === 'true');
      return reply.code(204).send();
    });
  }

  app.post(mcpPreview.url, withSpec(mcpPreview), async (request) => {
    admin(request);
    const q = parseInput(mcpPreviewBody, body(request), 'body');
    actions.requireReachable(q.url);
    return previewMcpServer({
      url: new URL(q.url),
      clientId: q.clientId,
      scopes: q.scopes,
      pkce: q.pkce,
      publicUrl,
      clientMetadataUrl: ctx.config.mcp.clientMetadataUrl,
      fetch: ctx.fetch,
      policy: ctx.config.outbound,
    });
  });
}
