import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Identity } from '../../identity/identity.js';
import type { PageOptions } from '../../ui/layout.js';
import { confirmPage, entryPage, integrationsListPage } from '../../ui/pages/admin/catalog-pages.js';
import type { FieldError, FormValues } from '../../ui/pages/admin/forms.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { parseRequest, withSpec } from '../openapi/route-spec.js';
import { Problem } from '../problem.js';
import { catalogActions } from './admin-catalog-actions.js';
import { integrationBody } from './admin-catalog-forms.js';
import { type ConsoleKind, consoleKinds, type LoadedEntry } from './admin-catalog-page-kinds.js';
import { adminAddIntegrationForm, adminIntegrationsPage } from './admin-catalog-page-specs.js';
import { adminPageGuard, fieldErrorsOf, sendPageWith } from './admin-console-support.js';
import { sendPage } from './pages.js';

// The console's catalog pages (issue 10): edit, enable, disable and delete providers,
// integrations and MCP servers added at run time, and list and add integrations. Every change is
// one of the shared catalog actions the JSON API calls (admin-catalog-actions.ts), so the checks,
// the refusals and the audit rows are the API's. Config-file entries are shown with no control;
// a POST to one answers the read-only page with 409.

const done: Record<string, NonNullable<PageOptions['flash']>> = {
  saved: { kind: 'success', text: 'Saved. Every instance uses the change within two seconds.' },
  added: { kind: 'success', text: 'Added. Users can connect it now.' },
  enabled: { kind: 'success', text: 'Enabled: users see it again and its connections work again.' },
  disabled: {
    kind: 'info',
    text: 'Disabled: its connections are kept but unusable until it is enabled again.',
  },
};
const conflictText =
  'Someone else edited this entry since you opened the page, so nothing was saved. Reload the page to see their change, then repeat yours.';
const flashOf = (query: unknown) => {
  const key = (query as Record<string, unknown> | undefined)?.done;
  return typeof key === 'string' && Object.hasOwn(done, key) ? done[key] : undefined;
};
const codeOf = (error: unknown) => (error instanceof Problem ? error.code : undefined);
/** What was typed, to show again: never a secret, never the form's own tokens. */
const typed = (form: Record<string, unknown>): FormValues =>
  Object.fromEntries(
    Object.entries(form).filter(
      ([k, v]) => typeof v === 'string' && !['_csrf', 'etag', 'clientSecret'].includes(k),
    ),
  ) as FormValues;

export function registerAdminCatalogPages(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const actions = catalogActions(ctx);
  const guard = adminPageGuard(ctx);
  const actorOf = (admin: Identity) => ({ userId: admin.userId, via: 'console' as const });

  for (const kind of consoleKinds(ctx, actions)) {
    const { routes, section } = kind;
    const base = (id: string) => `${section.path}/${id}`;
    const editPage = async (
      admin: Identity,
      e: LoadedEntry,
      values: FormValues,
      errors: readonly FieldError[],
      extra: { notice?: string; flash?: PageOptions['flash'] } = {},
    ) =>
      entryPage({
        admin,
        section,
        entry: e.summary,
        facts: e.facts,
        fields: await e.fields(values, errors),
        errors,
        ...extra,
      }).value;
    /** 409: the entry is the config file's; its page, with no control, says so. */
    const readOnlyPage = async (reply: FastifyReply, admin: Identity, e: LoadedEntry) =>
      sendPageWith(
        reply,
        409,
        await editPage(admin, e, e.values, [], {
          flash: { kind: 'error', text: 'This entry comes from the config file: nothing was changed.' },
        }),
      );

    app.get(routes.page.url, withSpec(routes.page), async (request, reply) => {
      const admin = guard(request, reply);
      if (admin === undefined) return reply;
      const { params } = parseRequest(routes.page, request);
      const e = await kind.load(params.id);
      return sendPage(reply, await editPage(admin, e, e.values, [], { flash: flashOf(request.query) }));
    });

    app.post(routes.save.url, withSpec(routes.save), async (request, reply) => {
      const admin = requireAdmin(request, publicUrl);
      const { params, body } = parseRequest(routes.save, request);
      const form = body as Record<string, string | undefined>;
      const e = await kind.load(params.id);
      try {
        await kind.update(actorOf(admin), params.id, e.patchOf(form), form.etag ?? '');
      } catch (error) {
        const code = codeOf(error);
        if (code === 'read_only') return readOnlyPage(reply, admin, e);
        if (code === 'edit_conflict') {
          return sendPageWith(
            reply,
            409,
            await editPage(admin, e, typed(form), [], { notice: conflictText }),
          );
        }
        return sendPageWith(reply, 400, await editPage(admin, e, typed(form), fieldErrorsOf(error)));
      }
      return reply.redirect(`${base(params.id)}?done=saved`, 303);
    });

    for (const [spec, enabled] of [
      [routes.enable, true],
      [routes.disable, false],
    ] as const) {
      app.post(spec.url, withSpec(spec), async (request, reply) => {
        const admin = requireAdmin(request, publicUrl);
        const { params, body: form } = parseRequest(spec, request);
        const e = await kind.load(params.id);
        try {
          await kind.update(actorOf(admin), params.id, { enabled }, (form as { etag: string }).etag);
        } catch (error) {
          const code = codeOf(error);
          if (code === 'read_only') return readOnlyPage(reply, admin, e);
          if (code !== 'edit_conflict') throw error;
          const refusal = { text: conflictText };
          return sendPageWith(
            reply,
            409,
            enabled
              ? await editPage(admin, e, e.values, [], { notice: conflictText })
              : confirmPage({
                  admin,
                  section,
                  entry: e.summary,
                  action: 'disable',
                  usedBy: e.usedBy,
                  refusal,
                }).value,
          );
        }
        return reply.redirect(`${base(params.id)}?done=${enabled ? 'enabled' : 'disabled'}`, 303);
      });
    }

    for (const [spec, action] of [
      [routes.disablePage, 'disable'],
      [routes.deletePage, 'delete'],
    ] as const) {
      app.get(spec.url, withSpec(spec), async (request, reply) => {
        const admin = guard(request, reply);
        if (admin === undefined) return reply;
        const { params } = parseRequest(spec, request);
        const e = await kind.load(params.id);
        if (e.summary.source === 'config') return readOnlyPage(reply, admin, e);
        return sendPage(
          reply,
          confirmPage({ admin, section, entry: e.summary, action, usedBy: e.usedBy }).value,
        );
      });
    }

    app.post(routes.remove.url, withSpec(routes.remove), async (request, reply) => {
      const admin = requireAdmin(request, publicUrl);
      const { params } = parseRequest(routes.remove, request);
      const e = await kind.load(params.id);
      try {
        await kind.remove(actorOf(admin), params.id);
      } catch (error) {
        const code = codeOf(error);
        if (code === 'read_only') return readOnlyPage(reply, admin, e);
        if (code !== 'in_use' || !(error instanceof Problem)) throw error;
        const refusal = {
          text: `Nothing was deleted: the ${section.what} is used by these integrations. Delete them, or move them to another provider, first.`,
          integrations: error.extra.integrations as string[],
        };
        return sendPageWith(
          reply,
          409,
          confirmPage({ admin, section, entry: e.summary, action: 'delete', usedBy: e.usedBy, refusal })
            .value,
        );
      }
      return reply.redirect(`${section.path}?deleted=${encodeURIComponent(params.id)}`, 303);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // the integrations list and its Add form

  const listPage = async (
    admin: Identity,
    values: FormValues,
    errors: readonly FieldError[],
    flash?: PageOptions['flash'],
  ) => {
    const [all, providers, health] = await Promise.all([
      ctx.catalog.listIntegrations({ includeDisabled: true }),
      ctx.catalog.listProviders(),
      ctx.connections.healthOverview(),
    ]);
    const count = (id: string) =>
      health.filter((h) => h.integration_id === id).reduce((n, h) => n + h.count, 0);
    const rows = all
      .filter((i) => i.kind === 'oauth')
      .map((i) => ({
        id: i.id,
        name: i.name,
        provider: i.providerId ?? '—',
        enabled: i.ownEnabled,
        usable: i.enabled,
        connections: count(i.id),
        source: i.source,
      }));
    return integrationsListPage({ admin, rows, providers: providers.map((p) => p.id), values, errors, flash })
      .value;
  };

  app.get(adminIntegrationsPage.url, withSpec(adminIntegrationsPage), async (request, reply) => {
    const admin = guard(request, reply);
    if (admin === undefined) return reply;
    const deleted = (request.query as Record<string, unknown> | undefined)?.deleted;
    const flash =
      typeof deleted === 'string' && /^[a-z0-9][a-z0-9_-]{0,63}$/.test(deleted)
        ? { kind: 'success' as const, text: `Deleted ${deleted} and its connections.` }
        : undefined;
    return sendPage(reply, await listPage(admin, {}, [], flash));
  });

  app.post(adminAddIntegrationForm.url, withSpec(adminAddIntegrationForm), async (request, reply) => {
    const admin = requireAdmin(request, publicUrl);
    const { body: form } = parseRequest(adminAddIntegrationForm, request);
    try {
      const created = await actions.createEntry('oauth', actorOf(admin), integrationBody(form));
      return reply.redirect(`/admin/integrations/${encodeURIComponent(created.id)}?done=added`, 303);
    } catch (error) {
      return sendPageWith(reply, 400, await listPage(admin, typed(form), fieldErrorsOf(error)));
    }
  });
}

export type { ConsoleKind };
