import { z } from 'zod';
import { defineRoute, problem } from '../openapi/route-spec.js';
import { catalogIdParams } from './admin-catalog-schemas.js';

// The console's catalog pages (admin-catalog-pages.ts registers them): per kind of entry, its
// page (the edit form, or read-only for a config-file entry), Save, Enable, and Disable… and
// Delete…, each a confirmation page and its POST; and the integrations list with its Add form.
// Every POST carries the session's CSRF token; Save and the switches carry the entry's etag.

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const console_ = { tags: ['Admin'], auth: 'session' as const };
const html = (description: string) => ({ description, contentType: 'text/html' });
const field = z.string().optional();
const csrf = z.string().describe('The session’s CSRF token');
const etag = z.string().describe('The entry’s version as read (its API ETag): a stale one is refused');

export const providerForm = z.object({
  _csrf: csrf,
  etag,
  clientId: field,
  clientSecret: field.describe('A new secret; empty keeps the stored one (never shown)'),
  clearSecret: z.literal('on').optional(),
  clientAuthMethod: field,
  tenant: field,
  issuer: field,
  authorizationEndpoint: field,
  tokenEndpoint: field,
  revocationEndpoint: field,
  userinfoEndpoint: field,
});
const integrationFormFields = {
  _csrf: csrf,
  name: field,
  description: field,
  provider: field,
  scopes: field.describe('Separated by spaces'),
  apiBaseUrl: field,
  groups: field.describe('Separated by commas; empty: everyone'),
};
export const integrationForm = z.object({ ...integrationFormFields, etag });
export const integrationAddForm = z.object({ ...integrationFormFields, id: field });
export const mcpServerForm = z.object({
  _csrf: csrf,
  etag,
  name: field,
  description: field,
  url: field,
  scopes: field,
  groups: field,
  clientId: field,
  clientSecret: field.describe('A new secret; empty keeps the stored one (never shown)'),
  clearSecret: z.literal('on').optional(),
  clientAuthMethod: field,
  pkce: z.literal('on').optional(),
  resourceOmit: z.literal('on').optional(),
});
export const switchForm = z.object({ _csrf: csrf, etag });
export const deleteForm = z.object({ _csrf: csrf });

/** The seven console routes of one kind of entry, under `path` (`/admin/providers`). */
function entryPageRoutes(path: string, what: string, op: string, form: z.ZodType) {
  const missing = problem(`No such ${what}, or not an administrator`);
  const refused = html(
    `The page again, saying why: read_only (from the config file), edit_conflict (edited meanwhile)`,
  );
  const back = {
    303: { description: `Back to the ${what}'s page`, headers: { location: `${path}/<id>?done=<outcome>` } },
  };
  const post = (url: string, operationId: string, summary: string, body: z.ZodType, extra = {}) =>
    defineRoute({
      method: 'POST',
      url,
      operationId,
      summary,
      ...console_,
      params: catalogIdParams,
      bodyType: 'form',
      body,
      responses: { ...back, 404: missing, 409: refused, ...extra },
    });
  const get = (url: string, operationId: string, summary: string) =>
    defineRoute({
      method: 'GET',
      url,
      operationId,
      summary,
      ...console_,
      params: catalogIdParams,
      responses: { 200: html('HTML page'), 404: missing },
    });
  return {
    page: get(
      `${path}/:id`,
      `admin${op}Page`,
      `The ${what}'s page: its edit form, or read-only from the config file`,
    ),
    save: post(`${path}/:id`, `admin${op}SaveForm`, `Saves the ${what}'s edit form`, form, {
      400: html('The form again, what was typed kept (never a secret), each error beside its field'),
    }),
    enable: post(`${path}/:id/enable`, `admin${op}EnableForm`, `Enables the ${what}`, switchForm),
    disablePage: get(
      `${path}/:id/disable`,
      `admin${op}DisablePage`,
      `Asks before disabling the ${what}, counting its connections`,
    ),
    disable: post(
      `${path}/:id/disable`,
      `admin${op}DisableForm`,
      `Disables the ${what}: its connections are kept but unusable`,
      switchForm,
    ),
    deletePage: get(
      `${path}/:id/delete`,
      `admin${op}DeletePage`,
      `Asks before deleting the ${what}, counting its connections`,
    ),
    remove: post(
      `${path}/:id/delete`,
      `admin${op}DeleteForm`,
      `Deletes the ${what}: its connections are revoked at the provider and removed`,
      deleteForm,
    ),
  };
}

export type EntryPageRoutes = ReturnType<typeof entryPageRoutes>;

export const providerPageRoutes = entryPageRoutes('/admin/providers', 'provider', 'Provider', providerForm);
export const integrationPageRoutes = entryPageRoutes(
  '/admin/integrations',
  'integration',
  'Integration',
  integrationForm,
);
export const mcpServerPageRoutes = entryPageRoutes(
  '/admin/mcp-servers',
  'MCP server',
  'McpServer',
  mcpServerForm,
);

export const adminIntegrationsPage = defineRoute({
  method: 'GET',
  url: '/admin/integrations',
  operationId: 'adminIntegrationsPage',
  summary: "The console's integrations: status, provider, connections, source; and the Add form",
  ...console_,
  responses: { 200: html('HTML page'), 404: notAdmin },
});

export const adminAddIntegrationForm = defineRoute({
  method: 'POST',
  url: '/admin/integrations',
  operationId: 'adminAddIntegrationForm',
  summary: 'Adds an integration of an existing provider',
  ...console_,
  bodyType: 'form',
  body: integrationAddForm,
  responses: {
    303: {
      description: 'To the integration’s page',
      headers: { location: '/admin/integrations/<id>?done=added' },
    },
    400: html('The list and form again, what was typed kept, each error beside its field'),
  },
});
