import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { disconnect } from '../../connections/disconnect.js';
import type { AuditAction } from '../../notify/audit.js';
import { McpDiscoveryError } from '../../oauth/mcp/errors.js';
import { checkUrl } from '../../oauth/mcp/fetch.js';
import { previewMcpServer } from '../../oauth/mcp/preview.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { WriteOutcome } from '../../store/repos/catalog-admin.js';
import type { Database } from '../../store/types.js';
import { requireAdmin } from '../auth.js';
import { type AppContext, disconnectDepsOf } from '../context.js';
import { withSpec } from '../openapi/route-spec.js';
import { notFound, Problem } from '../problem.js';
import { parseInput } from '../validate.js';
import {
  integrationEntry,
  integrationInput,
  integrationView,
  isPlainObject,
  mcpServerEntry,
  mcpServerInput,
  mcpServerView,
  mergePatch,
  providerEntry,
  providerInput,
  providerView,
} from './admin-catalog-entries.js';
import {
  catalogIdParams,
  catalogPatchBody,
  deleteQuery,
  integrationCreateBody,
  mcpPreviewBody,
  mcpServerCreateBody,
  providerCreateBody,
  providerSwitchBody,
} from './admin-catalog-schemas.js';
import { integrationRoutes, mcpPreview, mcpServerRoutes, providerRoutes } from './admin-catalog-specs.js';

/** 409: the entry comes from the config file, which stays its source of truth. */
const readOnly = (what: string, id: string) =>
  new Problem(
    409,
    'read_only',
    'Conflict',
    `The ${what} "${id}" comes from the config file and is read-only here; change the file instead.`,
  );

/** 400 naming one field, as {@link parseInput} words it. */
const fieldProblem = (path: string, message: string) =>
  new Problem(400, 'validation_failed', 'Bad Request', `${path}: ${message}`, {
    errors: [{ path, message }],
  });

/**
 * `/api/v1/admin/{providers,integrations,mcp-servers}`: the run-time catalog's write side.
 * Admins only (a signed-in non-admin gets 404, no credentials 401); secrets write-only; entries
 * from the config file read-only; every change audited with the admin as actor, in the same
 * transaction. Every instance sees a change within `catalogCacheMs` (its caches expire).
 */
export function registerAdminCatalogRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const admin = (request: FastifyRequest) => requireAdmin(request, publicUrl);
  const audit =
    (
      actor: string,
      action: AuditAction,
      targetType: string,
      targetId: string,
      data: Record<string, unknown>,
    ) =>
    (db: Kysely<Database>) =>
      ctx.audit.record({ actor, action, targetType, targetId, data }, db);
  const body = (request: FastifyRequest): Record<string, unknown> => {
    if (!isPlainObject(request.body)) throw fieldProblem('body', 'must be a JSON object');
    return request.body;
  };
  const idOf = (request: FastifyRequest) => parseInput(catalogIdParams, request.params, 'path').id;
  const credentialsOf = async (table: 'providers' | 'integrations', id: string) => {
    try {
      return table === 'providers'
        ? await ctx.catalog.providerCredentials(id)
        : await ctx.catalog.integrationCredentials(id);
    } catch {
      return undefined; // unreadable under the current keys: shown as set, never opened
    }
  };
  /** The version a PATCH must match: `If-Match` when sent, else the one just read. */
  const expectedVersion = (request: FastifyRequest, updatedAt: number): number => {
    const header = request.headers['if-match'];
    if (header === undefined) return updatedAt;
    const sent = /^(?:W\/)?"(\d{1,16})"$/.exec(String(header).trim());
    if (sent === null || Number(sent[1]) !== updatedAt) throw editConflict();
    return updatedAt;
  };
  const sendEntry = (reply: FastifyReply, status: number, updatedAt: number, view: object) =>
    reply.code(status).header('etag', `"${updatedAt}"`).send(view);

  // ---------------------------------------------------------------------------------------------
  // providers

  const providerOr404 = async (id: string) => {
    const p = await ctx.catalog.getProvider(id);
    if (p === undefined) throw notFound(`There is no provider "${id}".`);
    return p;
  };

  app.get(providerRoutes.list.url, withSpec(providerRoutes.list), async (request) => {
    admin(request);
    const providers = await ctx.catalog.listProviders();
    return Promise.all(providers.map(async (p) => providerView(p, await credentialsOf('providers', p.id))));
  });

  app.get(providerRoutes.get.url, withSpec(providerRoutes.get), async (request, reply) => {
    admin(request);
    const p = await providerOr404(idOf(request));
    return sendEntry(reply, 200, p.updatedAt, providerView(p, await credentialsOf('providers', p.id)));
  });

  app.post(providerRoutes.create.url, withSpec(providerRoutes.create), async (request, reply) => {
    const identity = admin(request);
    const { enabled, ...entry } = body(request);
    const on = parseInput(providerSwitchBody, { enabled }, 'body').enabled ?? true;
    const input = providerInput(parseInput(providerCreateBody, entry, 'body'), on);
    const created = await ctx.catalog.admin.createProvider(
      input,
      ctx.clock.now(),
      audit(identity.userId, 'admin.provider_created', 'provider', input.id, {
        type: input.type,
        enabled: on,
        clientSecret: input.credentials?.clientSecret === undefined ? 'none' : 'set',
      }),
    );
    if (!created) throw duplicate('provider', input.id);
    const p = await providerOr404(input.id);
    reply.header('location', `/api/v1/admin/providers/${p.id}`);
    return sendEntry(reply, 201, p.updatedAt, providerView(p, await credentialsOf('providers', p.id)));
  });

  app.patch(providerRoutes.update.url, withSpec(providerRoutes.update), async (request, reply) => {
    const identity = admin(request);
    const id = idOf(request);
    const current = await providerOr404(id);
    if (current.source === 'config') throw readOnly('provider', id);
    const patch = parseInput(catalogPatchBody, body(request), 'body');
    const version = expectedVersion(request, current.updatedAt);
    unchangeable(patch, { id, type: current.type });
    const { enabled, ...entryPatch } = patch;
    const on = parseInput(providerSwitchBody, { enabled }, 'body').enabled ?? current.enabled;
    const stored = (await credentialsOf('providers', id)) ?? {};
    const merged = mergePatch(providerEntry(current, stored), entryPatch);
    const input = providerInput(parseInput(providerCreateBody, merged, 'body'), on);
    const secretTouched = 'clientSecret' in patch || 'privateKey' in patch;
    const outcome = await ctx.catalog.admin.updateProvider(
      { ...input, credentials: secretTouched ? input.credentials : 'keep' },
      ctx.clock.now(),
      version,
      audit(identity.userId, 'admin.provider_updated', 'provider', id, {
        fields: Object.keys(patch).sort(),
        enabled: on,
        ...(secretTouched ? { clientSecret: secretChange(patch.clientSecret) } : {}),
      }),
    );
    requireDone(outcome);
    const p = await providerOr404(id);
    const unusable = on ? undefined : await connectionsOfProvider(ctx, id);
    return sendEntry(reply, 200, p.updatedAt, {
      ...providerView(p, await credentialsOf('providers', id)),
      ...(unusable === undefined ? {} : { unusableConnections: unusable }),
    });
  });

  app.delete(providerRoutes.remove.url, withSpec(providerRoutes.remove), async (request, reply) => {
    const identity = admin(request);
    const id = idOf(request);
    const current = await providerOr404(id);
    if (current.source === 'config') throw readOnly('provider', id);
    const result = await ctx.catalog.admin.deleteProvider(
      id,
      audit(identity.userId, 'admin.provider_deleted', 'provider', id, { type: current.type }),
    );
    if (result.usedBy.length > 0) {
      throw new Problem(
        409,
        'in_use',
        'Conflict',
        `The provider "${id}" is used by ${result.usedBy.length} integration(s): ${result.usedBy.join(', ')}. Delete or move them first.`,
        { integrations: result.usedBy },
      );
    }
    if (!result.deleted) throw notFound(`There is no provider "${id}".`);
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------------------------------------
  // integrations and MCP servers (one table, one id namespace; each route sees its own kind)

  const entryOr404 = async (kind: 'oauth' | 'mcp', id: string) => {
    const i = await ctx.catalog.getIntegration(id);
    if (i === undefined || i.kind !== kind) {
      throw notFound(`There is no ${kind === 'mcp' ? 'MCP server' : 'integration'} "${id}".`);
    }
    return i;
  };
  const discoveryOf = async (id: string) => (await ctx.mcpDiscovery.list()).get(id);
  const view = async (i: IntegrationRecord) =>
    i.kind === 'mcp' ? mcpServerView(i, await discoveryOf(i.id)) : integrationView(i);
  /** 400 unless the provider exists (checked here: the file's schema checks it against the file). */
  const requireProvider = async (providerId: string | null) => {
    if (providerId !== null && (await ctx.catalog.getProvider(providerId)) === undefined) {
      throw fieldProblem('body.provider', 'must be the id of a provider (see /api/v1/admin/providers)');
    }
  };
  /** 400 when the URL's scheme or literal address is refused by the outbound policy (DNS is checked on use). */
  const requireReachable = (url: string | undefined) => {
    if (url === undefined) return;
    try {
      checkUrl(new URL(url), ctx.config.outbound, 'the url');
    } catch (error) {
      if (error instanceof McpDiscoveryError) {
        throw fieldProblem(
          'body.url',
          'is refused by the outbound policy (scheme, or a network not allowed)',
        );
      }
      throw error;
    }
  };

  const routes = [
    { kind: 'oauth', path: '/api/v1/admin/integrations', schema: integrationCreateBody },
    { kind: 'mcp', path: '/api/v1/admin/mcp-servers', schema: mcpServerCreateBody },
  ] as const;
  for (const { kind, path } of routes) {
    const specs = kind === 'mcp' ? mcpServerRoutes : integrationRoutes;
    const what = kind === 'mcp' ? 'MCP server' : 'integration';
    const parseEntry = (entry: unknown) =>
      kind === 'mcp'
        ? mcpServerInput(parseInput(mcpServerCreateBody, entry, 'body'))
        : integrationInput(parseInput(integrationCreateBody, entry, 'body'));

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
      const i = await entryOr404(kind, idOf(request));
      return sendEntry(reply, 200, i.updatedAt, await view(i));
    });

    app.post(path, withSpec(specs.create), async (request, reply) => {
      const identity = admin(request);
      const input = parseEntry(body(request));
      await requireProvider(input.providerId);
      requireReachable(input.settings.url);
      const created = await ctx.catalog.admin.createIntegration(
        input,
        ctx.clock.now(),
        audit(identity.userId, 'admin.integration_created', 'integration', input.id, {
          kind,
          enabled: input.enabled,
          ...(kind === 'mcp' ? { clientSecret: input.credentials === null ? 'none' : 'set' } : {}),
        }),
      );
      if (!created) throw duplicate('integration or MCP server', input.id);
      const i = await entryOr404(kind, input.id);
      reply.header('location', `${path}/${i.id}`);
      return sendEntry(reply, 201, i.updatedAt, await view(i));
    });

    app.patch(`${path}/:id`, withSpec(specs.update), async (request, reply) => {
      const identity = admin(request);
      const id = idOf(request);
      const current = await entryOr404(kind, id);
      if (current.source === 'config') throw readOnly(what, id);
      const patch = parseInput(catalogPatchBody, body(request), 'body');
      const version = expectedVersion(request, current.updatedAt);
      unchangeable(patch, { id });
      const stored = kind === 'mcp' ? ((await credentialsOf('integrations', id)) ?? {}) : {};
      const base = kind === 'mcp' ? mcpServerEntry(current, stored) : integrationEntry(current);
      const input = parseEntry(mergePatch(base, patch));
      if ('provider' in patch) await requireProvider(input.providerId);
      if ('url' in patch) requireReachable(input.settings.url);
      const secretTouched = kind === 'mcp' && 'clientSecret' in patch;
      const outcome = await ctx.catalog.admin.updateIntegration(
        { ...input, credentials: secretTouched ? input.credentials : 'keep' },
        ctx.clock.now(),
        version,
        audit(identity.userId, 'admin.integration_updated', 'integration', id, {
          kind,
          fields: Object.keys(patch).sort(),
          enabled: input.enabled,
          ...(secretTouched ? { clientSecret: secretChange(patch.clientSecret) } : {}),
        }),
      );
      requireDone(outcome);
      const i = await entryOr404(kind, id);
      const unusable = input.enabled ? undefined : await ctx.connections.countForIntegration(id);
      return sendEntry(reply, 200, i.updatedAt, {
        ...(await view(i)),
        ...(unusable === undefined ? {} : { unusableConnections: unusable }),
      });
    });

    app.delete(`${path}/:id`, withSpec(specs.remove), async (request, reply) => {
      const identity = admin(request);
      const id = idOf(request);
      const { confirm } = parseInput(deleteQuery, request.query, 'query');
      const current = await entryOr404(kind, id);
      if (current.source === 'config') throw readOnly(what, id);
      const count = await ctx.connections.countForIntegration(id);
      if (count > 0 && confirm !== 'true') {
        throw new Problem(
          409,
          'confirm_required',
          'Conflict',
          `Deleting the ${what} "${id}" revokes ${count} connection(s) at the provider and removes them. Repeat with ?confirm=true to go ahead.`,
          { connections: count },
        );
      }
      const removed = await removeIntegration(ctx, id, identity.userId, (db) =>
        ctx.audit.record(
          {
            actor: identity.userId,
            action: 'admin.integration_deleted',
            targetType: 'integration',
            targetId: id,
            data: { kind, connectionsRemoved: count },
          },
          db,
        ),
      );
      if (!removed) throw notFound(`There is no ${what} "${id}".`);
      return reply.code(204).send();
    });
  }

  app.post(mcpPreview.url, withSpec(mcpPreview), async (request) => {
    admin(request);
    const q = parseInput(mcpPreviewBody, body(request), 'body');
    requireReachable(q.url);
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

/** `clientSecret` in a PATCH: what the audit says happened to it (never the value). */
function secretChange(value: unknown): 'set' | 'cleared' {
  return value === null ? 'cleared' : 'set';
}

/** `id` (and a provider's `type`) identify the entry: a PATCH may repeat them, not change them. */
function unchangeable(patch: Record<string, unknown>, fixed: Record<string, string>): void {
  for (const [key, value] of Object.entries(fixed)) {
    if (key in patch && patch[key] !== value) {
      throw fieldProblem(`body.${key}`, 'cannot be changed; create a new entry instead');
    }
  }
}

function duplicate(what: string, id: string): Problem {
  return new Problem(409, 'already_exists', 'Conflict', `An ${what} with the id "${id}" already exists.`);
}

function editConflict(): Problem {
  return new Problem(
    409,
    'edit_conflict',
    'Conflict',
    'This entry was changed since you read it. Read it again and repeat your change.',
  );
}

function requireDone(outcome: WriteOutcome): void {
  if (outcome === 'stale') throw editConflict();
}

/** How many connections the integrations of a provider have (kept, unusable while it is disabled). */
async function connectionsOfProvider(ctx: AppContext, providerId: string): Promise<number> {
  const ids = await ctx.catalog.integrationsUsing(providerId);
  const counts = await Promise.all(ids.map((id) => ctx.connections.countForIntegration(id)));
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Removes an integration with its connections: each is disconnected as its user would (revoked at
 * the provider, deleted, `connection.deleted` event and webhook), then the entry goes, in a
 * transaction that refuses while a connection is left (one made meanwhile is removed next round;
 * a flow finishing after the delete finds no integration and is refused).
 */
async function removeIntegration(
  ctx: AppContext,
  id: string,
  actor: string,
  then: (db: Kysely<Database>) => Promise<void>,
): Promise<boolean> {
  const deps = disconnectDepsOf(ctx);
  for (let round = 0; round < 1000; round++) {
    const outcome = await ctx.catalog.admin.deleteIntegration(id, then);
    if (outcome !== 'has_connections') return outcome === 'done';
    for (const row of await ctx.connections.listForIntegration(id, 50)) {
      await disconnect(deps, row, actor);
    }
  }
  throw new Error(`integration ${id} kept gaining connections while being deleted`);
}
