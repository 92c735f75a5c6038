import { z } from 'zod';
import { defineRoute, problem, type RouteSpec } from '../openapi/route-spec.js';
import {
  catalogIdParams,
  catalogPatchBody,
  deleteQuery,
  integrationCreateBody,
  mcpPreviewBody,
  mcpServerCreateBody,
  providerCreateBody,
} from './admin-catalog-schemas.js';

// The run-time catalog routes' declarations (admin-catalog.ts registers them): the request
// schemas are the config file's own, the answers the entries' views (never a secret).

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const admin = { tags: ['Admin catalog'], auth: 'admin' as const };
const etag = { etag: 'The entry’s version, for `If-Match` on PATCH' };

const entrySchema = (what: string) =>
  z
    .object({
      id: z.string(),
      source: z.enum(['config', 'admin']).describe('config: from the config file (read-only here)'),
      enabled: z.boolean(),
    })
    .loose()
    .describe(`${what}: its settings, \`hasClientSecret\` and \`clientSecretChangedAt\`, never a secret`);

const conflicts = problem(
  'read_only (from the config file), already_exists, in_use (integrations use it: listed), confirm_required (connections would be removed: counted) or edit_conflict (a stale If-Match)',
);

/** The five routes of one kind of catalog entry. */
function entryRoutes(
  path: string,
  name: { one: string; many: string; op: string },
  create: z.ZodType,
): Record<'list' | 'get' | 'create' | 'update' | 'remove', RouteSpec> {
  const entry = entrySchema(name.one);
  const missing = problem(`No such ${name.one}`);
  return {
    list: defineRoute({
      method: 'GET',
      url: path,
      operationId: `adminList${name.op}s`,
      summary: `Every ${name.one}, disabled ones included`,
      ...admin,
      responses: { 200: { description: name.many, json: z.array(entry) }, 404: notAdmin },
    }),
    get: defineRoute({
      method: 'GET',
      url: `${path}/:id`,
      operationId: `adminGet${name.op}`,
      summary: `One ${name.one}`,
      ...admin,
      params: catalogIdParams,
      responses: { 200: { description: name.one, json: entry, headers: etag }, 404: missing },
    }),
    create: defineRoute({
      method: 'POST',
      url: path,
      operationId: `adminCreate${name.op}`,
      summary: `Adds a ${name.one}: the fields of its config file entry, plus \`enabled\``,
      ...admin,
      body: create,
      responses: {
        201: { description: `The ${name.one}`, json: entry, headers: { ...etag, location: 'Its URL' } },
        400: problem('validation_failed, naming each field'),
        409: conflicts,
      },
    }),
    update: defineRoute({
      method: 'PATCH',
      url: `${path}/:id`,
      operationId: `adminUpdate${name.op}`,
      summary: `Edits a ${name.one} (JSON Merge Patch, RFC 7396: null removes a field; \`clientSecret: null\` clears the secret)`,
      ...admin,
      params: catalogIdParams,
      body: catalogPatchBody,
      responses: {
        200: { description: `The ${name.one}`, json: entry, headers: etag },
        400: problem('validation_failed, naming each field'),
        404: missing,
        409: conflicts,
      },
    }),
    remove: defineRoute({
      method: 'DELETE',
      url: `${path}/:id`,
      operationId: `adminDelete${name.op}`,
      summary: `Deletes a ${name.one}; with connections, only with ?confirm=true (each revoked at the provider, then removed)`,
      ...admin,
      params: catalogIdParams,
      query: deleteQuery,
      responses: { 204: { description: 'Deleted' }, 404: missing, 409: conflicts },
    }),
  };
}

export const providerRoutes = entryRoutes(
  '/api/v1/admin/providers',
  { one: 'provider', many: 'Providers', op: 'Provider' },
  providerCreateBody,
);
export const integrationRoutes = entryRoutes(
  '/api/v1/admin/integrations',
  { one: 'integration', many: 'Integrations', op: 'Integration' },
  integrationCreateBody,
);
export const mcpServerRoutes = entryRoutes(
  '/api/v1/admin/mcp-servers',
  { one: 'MCP server', many: 'MCP servers', op: 'McpServer' },
  mcpServerCreateBody,
);

export const mcpPreview = defineRoute({
  method: 'POST',
  url: '/api/v1/admin/mcp-servers/preview',
  operationId: 'adminPreviewMcpServer',
  summary: 'What discovery finds at an MCP server URL, before saving (nothing is registered or saved)',
  ...admin,
  body: mcpPreviewBody,
  responses: {
    200: {
      description: 'The discovery outcome',
      json: z
        .object({
          resource: z.string().nullable(),
          authorizationServer: z.string().nullable(),
          registration: z.enum(['cimd', 'dcr', 'pre-registered', 'none']).nullable(),
          scopes: z.array(z.string()),
          problems: z.array(z.object({ code: z.string(), detail: z.string() })),
        })
        .loose(),
    },
    400: problem('validation_failed, or an address the outbound policy refuses'),
    404: notAdmin,
  },
});
