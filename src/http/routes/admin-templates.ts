import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { callbackPath } from '../../connections/authorization-flow.js';
import {
  entraAdminConsentUrl,
  getTemplate,
  type ProviderTemplate,
  providerTemplates,
} from '../../oauth/templates/index.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { notFound } from '../problem.js';

const templateParams = z.strictObject({ id: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be a template id') });

const adminConsentQuery = z.strictObject({
  tenant: z
    .string()
    .regex(/^[A-Za-z0-9.-]{1,253}$/, 'must be a tenant id (GUID) or domain name')
    .refine(
      (t) => !['common', 'consumers', 'organizations'].includes(t.toLowerCase()),
      'must name one organisation (its tenant id or domain), not common, consumers or organizations',
    ),
  clientId: z.string().min(1).max(200),
  /** Space-separated scopes; default: every permission configured on the app registration. */
  scope: z.string().max(2000).optional(),
  redirectUri: z.url({ protocol: /^https?$/ }).optional(),
});

const templateSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.enum(['entra', 'oidc', 'oauth2']),
    endpoints: z.record(z.string(), z.unknown()),
    clientAuthMethod: z.string(),
    authorizationParams: z.record(z.string(), z.string()),
    tokenParams: z.record(z.string(), z.string()),
    defaultScopes: z.array(z.string()),
    quirks: z.array(z.string()).describe('What is particular about this provider, in sentences'),
    redirectUri: z.string().describe('The redirect URI to register at the provider'),
    requiredFields: z.array(z.string()).describe('What the admin fills in; the template sets the rest'),
    integrations: z.array(z.record(z.string(), z.unknown())).describe('Suggested integrations'),
  })
  .loose();

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const admin = { tags: ['Admin'], auth: 'admin' as const };

export const adminListTemplates = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/templates',
  operationId: 'adminListTemplates',
  summary: 'Provider templates: what each sets, its quirks, the redirect URI to register',
  ...admin,
  responses: { 200: { description: 'Templates', json: z.array(templateSchema) }, 404: notAdmin },
});

export const adminEntraAdminConsent = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/templates/entra/admin-consent',
  operationId: 'adminEntraAdminConsent',
  summary: "Entra's tenant-wide admin consent link for an app registration",
  ...admin,
  query: adminConsentQuery,
  responses: {
    200: { description: 'The link', json: z.object({ url: z.string() }) },
    400: problem('validation_failed'),
    404: notAdmin,
  },
});

export const adminGetTemplate = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/templates/:id',
  operationId: 'adminGetTemplate',
  summary: 'One provider template',
  ...admin,
  params: templateParams,
  responses: { 200: { description: 'The template', json: templateSchema }, 404: problem('No such template') },
});

/**
 * `GET /api/v1/admin/templates[/:id]`: the provider templates an admin picks from (what they set,
 * their quirks, the redirect URI to register and suggested integrations), and
 * `GET /api/v1/admin/templates/entra/admin-consent` for Entra's tenant-wide consent link.
 * Admins only (a signed-in non-admin gets 404). Nothing here is secret.
 */
export function registerAdminTemplateRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const redirectUri = `${publicUrl}${callbackPath}`;
  const view = (t: ProviderTemplate) => templateView(t, redirectUri);

  app.get(adminListTemplates.url, withSpec(adminListTemplates), async (request) => {
    requireAdmin(request, publicUrl);
    return [...providerTemplates().values()].map(view);
  });

  app.get(adminEntraAdminConsent.url, withSpec(adminEntraAdminConsent), async (request) => {
    requireAdmin(request, publicUrl);
    const { query: q } = parseRequest(adminEntraAdminConsent, request);
    const template = getTemplate('entra');
    const authority = template?.provider.type === 'entra' ? template.provider.authority : undefined;
    const url = entraAdminConsentUrl({
      tenant: q.tenant,
      clientId: q.clientId,
      // Entra sends the administrator back here with admin_consent=True: the console, not the callback.
      redirectUri: q.redirectUri ?? `${publicUrl}/admin`,
      ...(q.scope === undefined ? {} : { scopes: q.scope.split(' ').filter((s) => s.length > 0) }),
      ...(authority === undefined ? {} : { authority }),
    });
    return { url: url.href };
  });

  app.get(adminGetTemplate.url, withSpec(adminGetTemplate), async (request) => {
    requireAdmin(request, publicUrl);
    const {
      params: { id },
    } = parseRequest(adminGetTemplate, request);
    const template = getTemplate(id);
    if (template === undefined) throw notFound();
    return view(template);
  });
}

/** A template as the admin API shows it: its fields, the redirect URI to register, and what to paste. */
export function templateView(t: ProviderTemplate, redirectUri: string) {
  const { type, ...endpoints } = t.provider;
  return {
    id: t.id,
    name: t.name,
    type,
    endpoints,
    clientAuthMethod: t.clientAuthMethod,
    authorizationParams: t.authorizationParams ?? {},
    tokenParams: t.tokenParams ?? {},
    settings: t.settings,
    ...(t.scopeRule === undefined ? {} : { scopeRule: t.scopeRule }),
    defaultScopes: t.defaultScopes,
    quirks: t.quirks,
    redirectUri,
    registration: t.registration,
    /** What the admin fills in; everything else comes from the template. */
    requiredFields: ['id', 'clientId', 'clientSecret', ...(type === 'entra' ? ['tenant'] : [])],
    integrations: t.integrations,
    ...(t.id === 'entra' ? { adminConsent: '/api/v1/admin/templates/entra/admin-consent' } : {}),
  };
}
