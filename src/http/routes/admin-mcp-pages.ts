import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Identity } from '../../identity/identity.js';
import { McpDiscoveryError } from '../../oauth/mcp/errors.js';
import { checkUrl } from '../../oauth/mcp/fetch.js';
import { type McpPreview, previewMcpServer } from '../../oauth/mcp/preview.js';
import { html, type SafeHtml } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { adminNav } from '../../ui/pages/admin/nav.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { catalogActions } from './admin-catalog-actions.js';
import { mcpServerCreateBody } from './admin-catalog-schemas.js';
import { adminPageGuard, fieldErrorsOf } from './admin-console-support.js';
import { sendPage } from './pages.js';

// The console's MCP servers page (issue 10, item 3): the admin pastes a URL, sees what discovery
// found (resource, authorization server, how a client would be obtained, scopes, problems)
// before anything is saved, then saves it as an integration users can connect. The preview is
// the admin API's (oauth/mcp/preview.ts: nothing registered, nothing stored); saving checks the
// entry with the config file's own schema, as the API does.

const previewQuery = z.strictObject({ url: mcpServerCreateBody.shape.url });
const saveForm = z.object({
  _csrf: z.string(),
  id: z.string(),
  name: z.string(),
  url: z.string(),
  description: z.string().optional(),
});

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const console_ = { tags: ['Admin'], auth: 'session' as const };

export const adminMcpServersPage = defineRoute({
  method: 'GET',
  url: '/admin/mcp-servers',
  operationId: 'adminMcpServersPage',
  summary: "The console's MCP servers: the list, and a URL to preview",
  ...console_,
  responses: { 200: { description: 'HTML page', contentType: 'text/html' }, 404: notAdmin },
});

export const adminMcpPreviewPage = defineRoute({
  method: 'GET',
  url: '/admin/mcp-servers/preview',
  operationId: 'adminMcpPreviewPage',
  summary: 'What discovery finds at a URL, and a form to save it (nothing is saved or registered)',
  ...console_,
  query: previewQuery,
  responses: {
    200: { description: 'HTML page', contentType: 'text/html' },
    400: problem('validation_failed'),
    404: notAdmin,
  },
});

export const adminMcpSaveForm = defineRoute({
  method: 'POST',
  url: '/admin/mcp-servers',
  operationId: 'adminMcpSaveForm',
  summary: 'Saves a previewed MCP server as an integration users can connect',
  ...console_,
  bodyType: 'form',
  body: saveForm,
  responses: {
    303: {
      description: 'Back to the MCP servers page',
      headers: { location: '/admin/mcp-servers?saved=<id>' },
    },
    400: { description: 'The preview page again, naming the fields at fault', contentType: 'text/html' },
  },
});

export function registerAdminMcpPages(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const actions = catalogActions(ctx);
  const adminPage = adminPageGuard(ctx);
  const preview = (url: string) =>
    previewMcpServer({
      url: new URL(url),
      clientId: undefined,
      scopes: undefined,
      pkce: undefined,
      publicUrl,
      clientMetadataUrl: ctx.config.mcp.clientMetadataUrl,
      fetch: ctx.fetch,
      policy: ctx.config.outbound,
    });
  /** A URL the outbound policy refuses by its scheme or literal address: said before any request. */
  const refused = (url: string): McpPreview | undefined => {
    try {
      checkUrl(new URL(url), ctx.config.outbound, 'the url');
      return undefined;
    } catch (error) {
      if (!(error instanceof McpDiscoveryError)) throw error;
      const problems = [{ code: error.problem, detail: error.message }];
      return { resource: null, authorizationServer: null, registration: null, scopes: [], problems };
    }
  };

  app.get(adminMcpServersPage.url, withSpec(adminMcpServersPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    const [servers, discovery] = await Promise.all([
      ctx.catalog.listIntegrations({ includeDisabled: true }),
      ctx.mcpDiscovery.list(),
    ]);
    const { saved, deleted } = (request.query ?? {}) as Record<string, unknown>;
    const mcp = servers.filter((i) => i.kind === 'mcp');
    return sendPage(
      reply,
      layout({
        title: 'MCP servers · Admin',
        identity: admin,
        flash:
          typeof saved === 'string' && mcp.some((m) => m.id === saved)
            ? { kind: 'success', text: `Saved ${saved}: users can connect it now.` }
            : typeof deleted === 'string' && /^[a-z0-9][a-z0-9_-]{0,63}$/.test(deleted)
              ? { kind: 'success', text: `Deleted ${deleted} and its connections.` }
              : undefined,
        body: html`<h1>Administration</h1>${adminNav('/admin/mcp-servers')}
<h2>MCP servers</h2>
<div class="scroll"><table data-testid="admin-mcp-servers"><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">URL</th><th scope="col">Last discovery</th><th scope="col">Source</th><th scope="col">Usable</th></tr></thead><tbody>
${mcp.map((m) => {
  const d = discovery.get(m.id);
  const found =
    d === undefined
      ? html`<span class="muted">not checked yet</span>`
      : d.ok
        ? html`${d.summary.issuer ?? ''} (${d.summary.registration ?? ''})`
        : html`<span class="problem">${d.problem ?? 'failed'}</span>`;
  return html`<tr><td><a href="/admin/mcp-servers/${m.id}"><code>${m.id}</code></a></td><td>${m.name}</td><td><code>${m.settings.url ?? ''}</code></td><td>${found}</td><td>${m.source === 'config' ? 'config file' : 'console / API'}</td><td>${m.enabled ? 'yes' : 'no'}</td></tr>`;
})}
</tbody></table></div>
${mcp.length === 0 ? html`<p class="muted">No MCP server yet.</p>` : ''}
<h2>Add an MCP server</h2>
<form method="get" action="/admin/mcp-servers/preview" class="narrow">
<label for="mcp-url">Server URL</label><input type="text" id="mcp-url" name="url" required placeholder="https://mcp.example/mcp">
<p class="muted">Nothing is saved or registered yet: the next page shows what discovery finds.</p>
<div class="actions"><button type="submit">Preview</button></div>
</form>`,
      }).value,
    );
  });

  app.get(adminMcpPreviewPage.url, withSpec(adminMcpPreviewPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    const { query } = parseRequest(adminMcpPreviewPage, request);
    const found = refused(query.url) ?? (await preview(query.url));
    return sendPage(reply, previewPage(admin, query.url, found, suggestedId(query.url), []).value);
  });

  app.post(adminMcpSaveForm.url, withSpec(adminMcpSaveForm), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const { body: form } = parseRequest(adminMcpSaveForm, request);
    const entry = {
      id: form.id,
      name: form.name,
      url: form.url,
      ...(form.description ? { description: form.description } : {}),
    };
    const again = async (errors: Array<{ path: string; message: string }>) =>
      reply
        .code(400)
        .type('text/html; charset=utf-8')
        .send(
          previewPage(
            admin,
            form.url,
            refused(form.url) ?? (await preview(form.url)),
            form.id,
            errors,
            form.name,
          ).value,
        );
    if (refused(form.url) !== undefined) {
      return again([{ path: 'body.url', message: 'is refused by the outbound policy' }]);
    }
    // The same action the API's POST /api/v1/admin/mcp-servers is: same checks, same audit row.
    try {
      await actions.createEntry('mcp', { userId: admin.userId, via: 'console' }, entry);
    } catch (error) {
      return again(fieldErrorsOf(error));
    }
    return reply.redirect(`/admin/mcp-servers?saved=${encodeURIComponent(form.id)}`, 303);
  });
}
/** An id to start from: the host's first label, as a slug. */
function suggestedId(url: string): string {
  try {
    const label = new URL(url).hostname.split('.').find((l) => !['mcp', 'www', 'api'].includes(l)) ?? 'mcp';
    return (
      label
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 40) || 'mcp'
    );
  } catch {
    return 'mcp';
  }
}

const registrationText: Record<string, string> = {
  cimd: 'Client ID Metadata Document: the authorization server fetches ours; nothing to register',
  dcr: 'dynamic client registration (RFC 7591), done at the first Connect and shared by all users',
  'pre-registered': 'the client id configured for this server',
  none: 'none possible: this server needs a pre-registered client (set clientId through the API or the config file)',
};

function previewPage(
  admin: Identity,
  url: string,
  found: McpPreview,
  id: string,
  errors: Array<{ path: string; message: string }>,
  name = '',
): SafeHtml {
  const ok = found.problems.length === 0 && found.registration !== null && found.registration !== 'none';
  return layout({
    title: 'Preview an MCP server · Admin',
    identity: admin,
    body: html`<h1>Administration</h1>${adminNav('/admin/mcp-servers')}
<h2>What discovery found at <code>${url}</code></h2>
<dl class="facts" data-testid="mcp-preview">
<dt>Protected resource</dt><dd>${found.resource ?? '—'}</dd>
<dt>Authorization server</dt><dd>${found.authorizationServer ?? '—'}</dd>
<dt>Client</dt><dd>${found.registration === null ? '—' : (registrationText[found.registration] ?? found.registration)}</dd>
<dt>Scopes</dt><dd>${found.scopes.length === 0 ? 'none advertised' : found.scopes.join(' ')}</dd>
</dl>
${found.problems.map(
  (p) => html`<p class="problem" data-testid="mcp-preview-problem"><code>${p.code}</code>: ${p.detail}</p>`,
)}
${ok ? '' : html`<p class="muted">Users could not connect this server as it is. You may still save it (for example before its authorization server is up); its card will show the problem.</p>`}
<h2>Save it</h2>
${errors.length === 0 ? '' : html`<div class="flash flash-error" role="alert" data-testid="mcp-save-errors"><p>Nothing was saved:</p><ul>${errors.map((e) => html`<li><code>${e.path}</code>: ${e.message}</li>`)}</ul></div>`}
<form method="post" action="/admin/mcp-servers" class="narrow">
<input type="hidden" name="_csrf" value="${admin.csrfToken ?? ''}">
<input type="hidden" name="url" value="${url}">
<label for="mcp-id">Id (lowercase letters, digits, - and _)</label><input type="text" id="mcp-id" name="id" required value="${id}">
<label for="mcp-name">Name users see</label><input type="text" id="mcp-name" name="name" required value="${name}">
<label for="mcp-description">Description (optional)</label><input type="text" id="mcp-description" name="description">
<div class="actions"><button type="submit">Save</button> <a class="button secondary" href="/admin/mcp-servers">Cancel</a></div>
</form>`,
  });
}
