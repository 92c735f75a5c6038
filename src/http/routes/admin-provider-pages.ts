import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { callbackPath } from '../../connections/authorization-flow.js';
import type { Identity } from '../../identity/identity.js';
import { getTemplate, type ProviderTemplate, providerTemplates } from '../../oauth/templates/index.js';
import { html, type SafeHtml } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { adminNav } from '../../ui/pages/admin/nav.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { Problem } from '../problem.js';
import { parseInput } from '../validate.js';
import { refuseReservedId } from './admin-catalog-actions.js';
import { integrationInput, providerInput } from './admin-catalog-entries.js';
import { integrationCreateBody, providerCreateBody } from './admin-catalog-schemas.js';
import { adminPageGuard } from './admin-console-support.js';
import { sendPage } from './pages.js';

// The console's providers page (issue 10, items 2 and 5): the providers with their secrets shown
// only as set or not, and a provider added from a template by pasting a client id and secret,
// with the template's suggested integrations ticked on. Entries are checked by the config file's
// own schemas (the template expanded first), as the admin API does; a secret is never echoed.

const templateQuery = z.strictObject({
  template: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be a template id'),
});
const addForm = z.object({
  _csrf: z.string(),
  template: z.string(),
  id: z.string(),
  clientId: z.string(),
  clientSecret: z.string(),
  tenant: z.string().optional(),
  authority: z.string().optional(),
  integrations: z.union([z.string(), z.array(z.string())]).optional(),
});

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const console_ = { tags: ['Admin'], auth: 'session' as const };

export const adminProvidersPage = defineRoute({
  method: 'GET',
  url: '/admin/providers',
  operationId: 'adminProvidersPage',
  summary: "The console's providers and the templates to add one from",
  ...console_,
  responses: { 200: { description: 'HTML page', contentType: 'text/html' }, 404: notAdmin },
});

export const adminNewProviderPage = defineRoute({
  method: 'GET',
  url: '/admin/providers/new',
  operationId: 'adminNewProviderPage',
  summary: "A template's form: its quirks, the redirect URI to register, client id and secret to paste",
  ...console_,
  query: templateQuery,
  responses: {
    200: { description: 'HTML page', contentType: 'text/html' },
    404: problem('No such template, or not an administrator'),
  },
});

export const adminAddProviderForm = defineRoute({
  method: 'POST',
  url: '/admin/providers',
  operationId: 'adminAddProviderForm',
  summary: 'Adds a provider from a template, and the suggested integrations ticked',
  ...console_,
  bodyType: 'form',
  body: addForm,
  responses: {
    303: { description: 'Back to the providers page', headers: { location: '/admin/providers?saved=<id>' } },
    400: { description: 'The form again, naming the fields at fault', contentType: 'text/html' },
  },
});

export function registerAdminProviderPages(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const redirectUri = `${publicUrl}${callbackPath}`;
  const adminPage = adminPageGuard(ctx);

  app.get(adminProvidersPage.url, withSpec(adminProvidersPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    const providers = await ctx.catalog.listProviders();
    const { saved, deleted } = (request.query ?? {}) as Record<string, unknown>;
    return sendPage(
      reply,
      layout({
        title: 'Providers · Admin',
        identity: admin,
        flash:
          typeof saved === 'string' && providers.some((p) => p.id === saved)
            ? { kind: 'success', text: `Saved ${saved}. Users can connect its integrations now.` }
            : typeof deleted === 'string' && /^[a-z0-9][a-z0-9_-]{0,63}$/.test(deleted)
              ? { kind: 'success', text: `Deleted ${deleted}.` }
              : undefined,
        body: html`<h1>Administration</h1>${adminNav('/admin/providers')}
<h2>Providers</h2>
<div class="scroll"><table data-testid="admin-providers"><thead><tr><th scope="col">Id</th><th scope="col">Type</th><th scope="col">Template</th><th scope="col">Client secret</th><th scope="col">Source</th><th scope="col">Enabled</th></tr></thead><tbody>
${providers.map(
  (p) =>
    html`<tr><td><a href="/admin/providers/${p.id}"><code>${p.id}</code></a></td><td>${p.type}</td><td>${typeof p.settings.template === 'string' ? p.settings.template : '—'}</td><td>${p.hasCredentials ? 'set (write-only)' : 'none'}</td><td>${p.source === 'config' ? 'config file' : 'console / API'}</td><td>${p.enabled ? 'yes' : 'no'}</td></tr>`,
)}
</tbody></table></div>
<h2>Add a provider from a template</h2>
<ul class="grid" data-testid="templates">${[...providerTemplates().values()].map(
          (t) =>
            html`<li class="card"><h3>${t.name}</h3><p>${t.quirks[0] ?? ''}</p><div class="actions"><a class="button" href="/admin/providers/new?template=${t.id}">Use ${t.name}</a></div></li>`,
        )}</ul>`,
      }).value,
    );
  });

  app.get(adminNewProviderPage.url, withSpec(adminNewProviderPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    const { query } = parseRequest(adminNewProviderPage, request);
    const template = getTemplate(query.template);
    if (template === undefined)
      throw new Problem(404, 'not_found', 'Not Found', 'There is no such template.');
    const fields = { id: template.id, clientId: '', tenant: '', authority: '' };
    return sendPage(
      reply,
      templateForm(
        admin,
        template,
        redirectUri,
        fields,
        template.integrations.map((i) => i.id),
        [],
      ).value,
    );
  });

  app.post(adminAddProviderForm.url, withSpec(adminAddProviderForm), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const { body: form } = parseRequest(adminAddProviderForm, request);
    const template = getTemplate(form.template);
    if (template === undefined)
      throw new Problem(404, 'not_found', 'Not Found', 'There is no such template.');
    const chosen = form.integrations === undefined ? [] : [form.integrations].flat();
    const again = (errors: Array<{ path: string; message: string }>) =>
      reply
        .code(400)
        .type('text/html; charset=utf-8')
        .send(
          templateForm(
            admin,
            template,
            redirectUri,
            {
              id: form.id,
              clientId: form.clientId,
              tenant: form.tenant ?? '',
              authority: form.authority ?? '',
            },
            chosen,
            errors,
          ).value,
        );
    const problemsOf = (error: unknown) => {
      if (!(error instanceof Problem)) throw error;
      return (
        (error.extra.errors as Array<{ path: string; message: string }> | undefined) ?? [
          { path: 'form', message: error.detail ?? error.title },
        ]
      );
    };
    let provider: ReturnType<typeof providerInput>;
    try {
      const entry = {
        id: form.id,
        template: template.id,
        clientId: form.clientId,
        ...(form.clientSecret === '' ? {} : { clientSecret: form.clientSecret }),
        ...(template.provider.type === 'entra' && form.tenant ? { tenant: form.tenant } : {}),
        ...(template.provider.type === 'entra' && form.authority ? { authority: form.authority } : {}),
      };
      provider = providerInput(parseInput(providerCreateBody, entry, 'form'), true);
      refuseReservedId('provider', provider.id);
    } catch (error) {
      return again(problemsOf(error));
    }
    // The suggested integrations ticked, checked before anything is written (all or nothing).
    const integrations: Array<ReturnType<typeof integrationInput>> = [];
    const errors: Array<{ path: string; message: string }> = [];
    for (const id of chosen) {
      const suggestion = template.integrations.find((i) => i.id === id);
      if (suggestion === undefined) {
        errors.push({
          path: `form.integrations`,
          message: `${id} is not one of the template's integrations`,
        });
        continue;
      }
      try {
        integrations.push(
          integrationInput(
            parseInput(
              integrationCreateBody,
              {
                id: suggestion.id,
                name: suggestion.name,
                provider: provider.id,
                scopes: suggestion.scopes,
                ...(suggestion.api === undefined ? {} : { api: suggestion.api }),
              },
              'form',
            ),
          ),
        );
      } catch (error) {
        errors.push(...problemsOf(error));
      }
      if ((await ctx.catalog.getIntegration(id)) !== undefined) {
        errors.push({ path: 'form.integrations', message: `${id} is already an integration or MCP server` });
      }
    }
    if ((await ctx.catalog.getProvider(provider.id)) !== undefined) {
      errors.push({ path: 'form.id', message: 'is already a provider' });
    }
    if (errors.length > 0) return again(errors);
    const now = ctx.clock.now();
    const created = await ctx.catalog.admin.createProvider(provider, now, (db) =>
      ctx.audit.record(
        {
          actor: admin.userId,
          action: 'admin.provider_created',
          targetType: 'provider',
          targetId: provider.id,
          data: {
            type: provider.type,
            template: template.id,
            enabled: true,
            clientSecret: form.clientSecret === '' ? 'none' : 'set',
            via: 'console',
          },
        },
        db,
      ),
    );
    if (!created) return again([{ path: 'form.id', message: 'is already a provider' }]);
    for (const integration of integrations) {
      await ctx.catalog.admin.createIntegration(integration, now, (db) =>
        ctx.audit.record(
          {
            actor: admin.userId,
            action: 'admin.integration_created',
            targetType: 'integration',
            targetId: integration.id,
            data: { kind: 'oauth', enabled: true, template: template.id, via: 'console' },
          },
          db,
        ),
      );
    }
    return reply.redirect(`/admin/providers?saved=${encodeURIComponent(provider.id)}`, 303);
  });
}

function templateForm(
  admin: Identity,
  t: ProviderTemplate,
  redirectUri: string,
  fields: { id: string; clientId: string; tenant: string; authority: string },
  chosen: readonly string[],
  errors: Array<{ path: string; message: string }>,
): SafeHtml {
  return layout({
    title: `${t.name} · Admin`,
    identity: admin,
    body: html`<h1>Administration</h1>${adminNav('/admin/providers')}
<h2>Add ${t.name}</h2>
<h3>1. Register the app at the provider</h3>
<p>At <a href="${t.registration.console}" rel="noreferrer noopener">${t.registration.console}</a>:</p>
<ol>${t.registration.steps.map((s) => html`<li>${s}</li>`)}</ol>
<p>Redirect URI to register: <code data-testid="redirect-uri">${redirectUri}</code></p>
<h3>What is particular about ${t.name}</h3>
<ul data-testid="quirks">${t.quirks.map((q) => html`<li>${q}</li>`)}</ul>
<h3>2. Paste its client id and secret</h3>
${errors.length === 0 ? '' : html`<div class="flash flash-error" role="alert" data-testid="provider-errors"><p>Nothing was saved:</p><ul>${errors.map((e) => html`<li><code>${e.path}</code>: ${e.message}</li>`)}</ul></div>`}
<form method="post" action="/admin/providers" class="narrow">
<input type="hidden" name="_csrf" value="${admin.csrfToken ?? ''}">
<input type="hidden" name="template" value="${t.id}">
<label for="p-id">Provider id</label><input type="text" id="p-id" name="id" required value="${fields.id}">
${
  t.provider.type === 'entra'
    ? html`<label for="p-tenant">Tenant (organizations, common, a tenant id or a domain)</label><input type="text" id="p-tenant" name="tenant" value="${fields.tenant}" placeholder="organizations">
<label for="p-authority">Sign-in authority (leave empty for the global cloud; a national cloud's, e.g. https://login.microsoftonline.us)</label><input type="url" id="p-authority" name="authority" value="${fields.authority}" placeholder="https://login.microsoftonline.com">`
    : ''
}
<label for="p-client">Client id</label><input type="text" id="p-client" name="clientId" required value="${fields.clientId}" autocomplete="off">
<label for="p-secret">Client secret (stored sealed, never shown again)</label><input type="password" id="p-secret" name="clientSecret" autocomplete="new-password">
<fieldset><legend>Integrations to offer users</legend>${t.integrations.map(
      (i) =>
        html`<label class="check"><input type="checkbox" name="integrations" value="${i.id}"${chosen.includes(i.id) ? html` checked` : ''}> ${i.name} <span class="muted">(${i.scopes.join(' ')})</span></label>`,
    )}</fieldset>
<div class="actions"><button type="submit">Save</button> <a class="button secondary" href="/admin/providers">Cancel</a></div>
</form>`,
  });
}
