import type { FastifyInstance } from 'fastify';
import { adminsAudience } from '../../notify/notifications.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { adminNav } from '../../ui/pages/admin/nav.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, problem, withSpec } from '../openapi/route-spec.js';
import { sendPage, signInRedirect } from './pages.js';

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');

const adminPage = defineRoute({
  method: 'GET',
  url: '/admin',
  operationId: 'adminPage',
  summary: 'The administration page',
  tags: ['Admin'],
  auth: 'session',
  responses: { 200: { description: 'HTML page', contentType: 'text/html' }, 404: notAdmin },
});

/**
 * The admin console's overview page, `/admin` (the catalog's API is in admin-catalog.ts;
 * connections, audit and webhooks in admin-operations.ts).
 * Secrets are never returned: only whether a provider has credentials. Non-admins get 404.
 */
export function registerAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  app.get(adminPage.url, withSpec(adminPage), async (request, reply) => {
    if (request.identity === undefined) return signInRedirect(ctx, request, reply);
    const identity = requireAdmin(request, publicUrl);
    const [providers, integrations, health, audit, alerts, discovery] = await Promise.all([
      ctx.catalog.listProviders(),
      ctx.catalog.listIntegrations({ includeDisabled: true }),
      ctx.connections.healthOverview(),
      ctx.audit.list({ limit: 50 }),
      ctx.notifications.list(adminsAudience, { unresolvedOnly: true }),
      ctx.mcpDiscovery.list(),
    ]);
    /** An MCP server's last discovery: what it found (issuer, registration), or its problem. */
    const found = (id: string) => {
      const d = discovery.get(id);
      if (d === undefined) return html`<span class="muted">not checked yet</span>`;
      if (!d.ok)
        return html`<span class="problem" data-testid="admin-problem-${id}">${d.problem ?? 'failed'}</span>`;
      return html`${d.summary.issuer ?? ''} (${d.summary.registration ?? ''}; scopes: ${(d.summary.scopes ?? []).join(' ') || 'none'})`;
    };
    const count = (id: string, status: string) =>
      health.find((h) => h.integration_id === id && h.status === status)?.count ?? 0;
    return sendPage(
      reply,
      layout({
        title: 'Admin',
        identity,
        body: html`<h1>Administration</h1>${adminNav('/admin')}
${alerts.map(
  (a) =>
    html`<div class="banner" role="alert" data-testid="admin-alert">Provider <code>${String(a.data.provider)}</code> rejects this service's client (${String(a.data.error)}): check its client id and secret.</div>`,
)}
<h2>Providers</h2>
<table><thead><tr><th scope="col">Id</th><th scope="col">Type</th><th scope="col">Credentials</th><th scope="col">Source</th><th scope="col">Enabled</th></tr></thead><tbody>
${providers.map((p) => html`<tr><td><code>${p.id}</code></td><td>${p.type}</td><td>${p.hasCredentials ? 'set (write-only)' : 'none'}</td><td>${p.source}</td><td>${p.enabled ? 'yes' : 'no'}</td></tr>`)}
</tbody></table>
<h2>Integrations and MCP servers</h2>
<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Provider (MCP: authorization server)</th><th scope="col">Active</th><th scope="col">Needs reauth</th><th scope="col">Enabled</th></tr></thead><tbody>
${integrations.map((i) => html`<tr data-testid="admin-integration-${i.id}"><td><code>${i.id}</code></td><td>${i.name}</td><td>${i.kind}</td><td>${i.kind === 'mcp' ? found(i.id) : (i.providerId ?? '—')}</td><td>${count(i.id, 'active')}</td><td>${count(i.id, 'needs_reauth')}</td><td>${i.enabled ? 'yes' : 'no'}</td></tr>`)}
</tbody></table>
<h2>Audit log</h2>
<table><thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th></tr></thead><tbody>
${audit.map((a) => html`<tr><td>${new Date(a.at).toISOString()}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.target_type ?? ''} ${a.target_id ?? ''}</td></tr>`)}
</tbody></table>`,
      }).value,
    );
  });
}
