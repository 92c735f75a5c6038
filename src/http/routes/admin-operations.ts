import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { disconnect } from '../../connections/disconnect.js';
import type { Identity } from '../../identity/identity.js';
import { type AuditFilter, auditView } from '../../notify/audit.js';
import { adminsAudience } from '../../notify/notifications.js';
import { type AdminConnectionRow, toAdminConnectionView } from '../../store/repos/connections.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { adminNav } from '../../ui/pages/admin/nav.js';
import { requireAdmin } from '../auth.js';
import { type AppContext, disconnectDepsOf } from '../context.js';
import { withSpec } from '../openapi/route-spec.js';
import { connectionNotFound } from '../problem.js';
import { parseInput } from '../validate.js';
import * as spec from './admin-operations-specs.js';
import {
  adminAuditQuery,
  adminConnectionParams,
  adminConnectionsQuery,
  connectionStatus,
} from './admin-operations-specs.js';
import { sendPage, signInRedirect } from './pages.js';

// The administrators' operations side (issue 10, item 5): every user's connections (health,
// force a refresh, disconnect), the audit log (filters, JSON-lines export) and admin
// notifications; webhooks are in admin-webhooks.ts. The same repositories answer the JSON API
// and the console pages; a token is never read for either.

export function registerAdminOperationRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const disconnectDeps = disconnectDepsOf(ctx);

  const findConnection = async (params: unknown): Promise<AdminConnectionRow> => {
    const parsed = adminConnectionParams.safeParse(params);
    if (!parsed.success) throw connectionNotFound();
    const row = await ctx.connections.adminFind(parsed.data.id);
    if (row === undefined) throw connectionNotFound();
    return row;
  };

  /** Forces a refresh now; the outcome is the connection's state afterwards (never a token). */
  const forceRefresh = async (admin: Identity, row: AdminConnectionRow) => {
    let outcome: 'refreshed' | 'needs_reauth' | 'unavailable' = 'refreshed';
    try {
      await ctx.tokens.getAccessToken(row.id, { force: true });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'connection_needs_reauth') outcome = 'needs_reauth';
      else if (code === 'provider_unavailable' || code === 'provider_misconfigured') outcome = 'unavailable';
      else throw error;
    }
    await ctx.audit.record({
      actor: admin.userId,
      action: 'admin.connection_refreshed',
      targetType: 'connection',
      targetId: row.id,
      userId: row.user_id,
      integrationId: row.integration_id,
      data: { outcome },
    });
    return { outcome, connection: toAdminConnectionView((await ctx.connections.adminFind(row.id)) ?? row) };
  };

  const auditFilter = (q: z.output<typeof adminAuditQuery>): AuditFilter => ({
    ...(q.user === undefined ? {} : { user: q.user }),
    ...(q.integration === undefined ? {} : { integration: q.integration }),
    ...(q.action === undefined ? {} : { action: q.action }),
    ...(q.since === undefined ? {} : { since: q.since }),
    ...(q.until === undefined ? {} : { until: q.until }),
    ...(q.before === undefined ? {} : { before: q.before }),
  });

  /** The whole filtered log as JSON lines, read page by page while it is sent. */
  const sendAuditExport = async (reply: FastifyReply, filter: AuditFilter) => {
    const day = new Date(ctx.clock.now()).toISOString().slice(0, 10);
    reply
      .header('content-type', 'application/jsonl; charset=utf-8')
      .header('content-disposition', `attachment; filename="nunq-audit-${day}.jsonl"`)
      .header('cache-control', 'no-store');
    const rows = ctx.audit.export(filter);
    async function* lines() {
      for await (const row of rows) yield `${JSON.stringify(auditView(row))}\n`;
    }
    const { Readable } = await import('node:stream');
    return reply.send(Readable.from(lines()));
  };

  // -------------------------------------------------------------------------------------------
  // JSON API

  app.get(spec.adminListConnections.url, withSpec(spec.adminListConnections), async (request) => {
    requireAdmin(request, publicUrl);
    const q = parseInput(adminConnectionsQuery, request.query, 'query');
    const rows = await ctx.connections.adminList({
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.integration === undefined ? {} : { integration: q.integration }),
      ...(q.user === undefined ? {} : { user: q.user }),
      limit: q.limit ?? 100,
      ...(q.offset === undefined ? {} : { offset: q.offset }),
    });
    return rows.map(toAdminConnectionView);
  });

  app.get(spec.adminConnectionOverview.url, withSpec(spec.adminConnectionOverview), async (request) => {
    requireAdmin(request, publicUrl);
    return overview(await ctx.connections.healthOverview());
  });

  app.get(spec.adminGetConnection.url, withSpec(spec.adminGetConnection), async (request) => {
    requireAdmin(request, publicUrl);
    return toAdminConnectionView(await findConnection(request.params));
  });

  app.post(spec.adminRefreshConnection.url, withSpec(spec.adminRefreshConnection), async (request) => {
    const admin = requireAdmin(request, publicUrl);
    return forceRefresh(admin, await findConnection(request.params));
  });

  app.delete(spec.adminDeleteConnection.url, withSpec(spec.adminDeleteConnection), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const row = await findConnection(request.params);
    const full = await ctx.connections.findById(row.id);
    if (full !== undefined) await disconnect(disconnectDeps, full, admin.userId);
    return reply.code(204).send();
  });

  app.get(spec.adminListAudit.url, withSpec(spec.adminListAudit), async (request, reply) => {
    requireAdmin(request, publicUrl);
    const q = parseInput(adminAuditQuery, request.query, 'query');
    if (q.format === 'jsonl') return sendAuditExport(reply, auditFilter(q));
    return (
      await ctx.audit.list({ ...auditFilter(q), ...(q.limit === undefined ? {} : { limit: q.limit }) })
    ).map(auditView);
  });

  app.get(spec.adminListNotifications.url, withSpec(spec.adminListNotifications), async (request) => {
    requireAdmin(request, publicUrl);
    return ctx.notifications.list(adminsAudience, { limit: 200 });
  });

  // -------------------------------------------------------------------------------------------
  // Console pages (server-rendered, no script needed; every action a POST with the CSRF token)

  /** Signs in first (a page), then requires an admin (404 for anyone else). */
  const adminPage = (request: FastifyRequest, reply: FastifyReply): Identity | undefined => {
    if (request.identity === undefined) {
      signInRedirect(ctx, request, reply);
      return undefined;
    }
    return requireAdmin(request, publicUrl);
  };
  const flashOf = (request: FastifyRequest) => {
    const text = (request.query as Record<string, unknown> | undefined)?.done;
    return typeof text === 'string' && flashes[text] !== undefined ? flashes[text] : undefined;
  };

  app.get(spec.adminConnectionsPage.url, withSpec(spec.adminConnectionsPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    // Empty form fields mean "any"; `done` names the outcome shown after an action.
    const query = Object.fromEntries(
      Object.entries((request.query ?? {}) as Record<string, unknown>).filter(
        ([k, v]) => v !== '' && k !== 'done',
      ),
    );
    const q = parseInput(adminConnectionsQuery, query, 'query');
    const limit = q.limit ?? 50;
    const rows = await ctx.connections.adminList({
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.integration === undefined ? {} : { integration: q.integration }),
      ...(q.user === undefined ? {} : { user: q.user }),
      limit,
      ...(q.offset === undefined ? {} : { offset: q.offset }),
    });
    const integrations = await ctx.catalog.listIntegrations({ includeDisabled: true });
    const pageLink = (offset: number) => {
      const p = new URLSearchParams();
      if (q.status) p.set('status', q.status);
      if (q.integration) p.set('integration', q.integration);
      if (q.user) p.set('user', q.user);
      p.set('offset', String(offset));
      return `/admin/connections?${p}`;
    };
    const csrf = admin.csrfToken ?? '';
    return sendPage(
      reply,
      layout({
        title: 'Connections · Admin',
        identity: admin,
        flash: flashOf(request),
        body: html`<h1>Administration</h1>${adminNav('/admin/connections')}
<h2>Connections</h2>
<form method="get" action="/admin/connections" class="filters" role="search" aria-label="Filter connections">
<label>Status <select name="status"><option value="">any</option>${connectionStatus.options.map(
          (s) => html`<option value="${s}"${q.status === s ? html` selected` : ''}>${s}</option>`,
        )}</select></label>
<label>Integration <select name="integration"><option value="">any</option>${integrations.map(
          (i) =>
            html`<option value="${i.id}"${q.integration === i.id ? html` selected` : ''}>${i.name} (${i.id})</option>`,
        )}</select></label>
<label>User <input type="text" name="user" value="${q.user ?? ''}" autocomplete="off"></label>
<button type="submit" class="secondary">Filter</button>
</form>
<div class="scroll"><table data-testid="admin-connections"><thead><tr><th scope="col">User</th><th scope="col">Integration</th><th scope="col">Status</th><th scope="col">Last refresh</th><th scope="col">Next attempt</th><th scope="col">Failures</th><th scope="col">Actions</th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr data-testid="admin-connection-${r.id}"><td>${r.user_id}</td><td><code>${r.integration_id}</code></td>
<td><span class="status status-${r.status}">${r.status}</span>${r.status_reason ? html` <span class="muted">${r.status_reason}</span>` : ''}</td>
<td>${when(r.last_refreshed_at)}</td><td>${when(r.next_refresh_at)}</td><td>${r.refresh_failures}</td>
<td class="actions"><form method="post" action="/admin/connections/${r.id}/refresh" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="secondary" aria-label="Refresh ${r.user_id}'s ${r.integration_id} connection now">Refresh now</button></form>
<a class="button secondary" href="/admin/connections/${r.id}/disconnect" aria-label="Disconnect ${r.user_id}'s ${r.integration_id} connection">Disconnect…</a></td></tr>`,
)}
</tbody></table></div>
${rows.length === 0 ? html`<p class="muted">No connection matches.</p>` : ''}
<p>${(q.offset ?? 0) > 0 ? html`<a href="${pageLink(Math.max(0, (q.offset ?? 0) - limit))}">Newer</a> ` : ''}${
          rows.length === limit ? html`<a href="${pageLink((q.offset ?? 0) + limit)}">Older</a>` : ''
        }</p>`,
      }).value,
    );
  });

  app.post(spec.adminRefreshForm.url, withSpec(spec.adminRefreshForm), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const { outcome } = await forceRefresh(admin, await findConnection(request.params));
    return reply.redirect(`/admin/connections?done=refresh_${outcome}`, 303);
  });

  // Disconnecting someone else's connection is destructive: a page says what happens, then a POST.
  app.get(spec.adminDisconnectPage.url, withSpec(spec.adminDisconnectPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    const row = await findConnection(request.params);
    return sendPage(
      reply,
      layout({
        title: 'Disconnect · Admin',
        identity: admin,
        body: html`<h1>Disconnect ${row.user_id}'s ${row.integration_id} connection?</h1>
<p>Its tokens are revoked at the provider where it allows that, then deleted. The user is told
and must connect again to use ${row.integration_id}. This cannot be undone.</p>
<form method="post" action="/admin/connections/${row.id}/disconnect"><input type="hidden" name="_csrf" value="${admin.csrfToken ?? ''}">
<div class="actions"><button type="submit" class="danger" data-testid="confirm-disconnect">Disconnect</button> <a class="button secondary" href="/admin/connections">Cancel</a></div></form>`,
      }).value,
    );
  });

  app.post(spec.adminDisconnectForm.url, withSpec(spec.adminDisconnectForm), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const row = await findConnection(request.params);
    const full = await ctx.connections.findById(row.id);
    if (full !== undefined) await disconnect(disconnectDeps, full, admin.userId);
    return reply.redirect('/admin/connections?done=disconnected', 303);
  });

  app.get(spec.adminAuditPage.url, withSpec(spec.adminAuditPage), async (request, reply) => {
    const admin = adminPage(request, reply);
    if (admin === undefined) return reply;
    // Empty form fields mean "any".
    const raw = Object.fromEntries(
      Object.entries((request.query ?? {}) as Record<string, unknown>).filter(([, v]) => v !== ''),
    );
    const q = parseInput(adminAuditQuery, raw, 'query');
    const rows = (await ctx.audit.list({ ...auditFilter(q), limit: q.limit ?? 100 })).map(auditView);
    const exportParams = new URLSearchParams(
      Object.entries(raw).filter(([k]) =>
        ['user', 'integration', 'action', 'since', 'until'].includes(k),
      ) as Array<[string, string]>,
    );
    exportParams.set('format', 'jsonl');
    const olderParams = new URLSearchParams(
      Object.entries(raw).filter(([k]) => k !== 'before') as Array<[string, string]>,
    );
    const last = rows[rows.length - 1];
    if (last !== undefined) olderParams.set('before', String(last.id));
    return sendPage(
      reply,
      layout({
        title: 'Audit log · Admin',
        identity: admin,
        body: html`<h1>Administration</h1>${adminNav('/admin/audit')}
<h2>Audit log</h2>
<form method="get" action="/admin/audit" class="filters" role="search" aria-label="Filter the audit log">
<label>User <input type="text" name="user" value="${q.user ?? ''}" autocomplete="off"></label>
<label>Integration <input type="text" name="integration" value="${q.integration ?? ''}" autocomplete="off"></label>
<label>Event <input type="text" name="action" value="${q.action ?? ''}" placeholder="connection.deleted" autocomplete="off"></label>
<label>Since <input type="text" name="since" value="${typeof raw.since === 'string' ? raw.since : ''}" placeholder="2026-12-01T00:00Z" autocomplete="off"></label>
<label>Until <input type="text" name="until" value="${typeof raw.until === 'string' ? raw.until : ''}" autocomplete="off"></label>
<button type="submit" class="secondary">Filter</button>
</form>
<p><a href="/api/v1/admin/audit?${exportParams.toString()}" data-testid="audit-export">Export these entries as JSON lines</a></p>
<div class="scroll"><table data-testid="admin-audit"><thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Event</th><th scope="col">User</th><th scope="col">Integration</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead><tbody>
${rows.map(
  (a) =>
    html`<tr><td>${a.at}</td><td>${a.actor}</td><td><code>${a.action}</code></td><td>${a.user ?? ''}</td><td>${a.integration ?? ''}</td><td>${a.targetType ?? ''} ${a.targetId ?? ''}</td><td><code>${JSON.stringify(a.data)}</code></td></tr>`,
)}
</tbody></table></div>
${rows.length === 0 ? html`<p class="muted">No entry matches.</p>` : ''}
${last !== undefined && rows.length === (q.limit ?? 100) ? html`<p><a href="/admin/audit?${olderParams.toString()}">Older</a></p>` : ''}`,
      }).value,
    );
  });
}

const flashes: Record<string, { kind: 'success' | 'error' | 'info'; text: string }> = {
  refresh_refreshed: { kind: 'success', text: 'Refreshed: the connection has a new access token.' },
  refresh_needs_reauth: {
    kind: 'error',
    text: 'The provider refused the refresh: the connection needs its user to reconnect.',
  },
  refresh_unavailable: {
    kind: 'error',
    text: 'The provider could not be asked (down, throttling, or misconfigured); the connection stays as it was.',
  },
  disconnected: { kind: 'success', text: 'Disconnected; the user has been told.' },
};

function when(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** Connection counts by integration and status, with the total per integration. */
export function overview(rows: Array<{ integration_id: string; status: string; count: number }>) {
  const by = new Map<string, { integration: string; active: number; needsReauth: number; total: number }>();
  for (const r of rows) {
    const entry = by.get(r.integration_id) ?? {
      integration: r.integration_id,
      active: 0,
      needsReauth: 0,
      total: 0,
    };
    if (r.status === 'active') entry.active += r.count;
    else if (r.status === 'needs_reauth') entry.needsReauth += r.count;
    entry.total += r.count;
    by.set(r.integration_id, entry);
  }
  return [...by.values()].sort((a, b) => a.integration.localeCompare(b.integration));
}
