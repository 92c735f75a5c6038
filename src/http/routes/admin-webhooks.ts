import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Identity } from '../../identity/identity.js';
import type { WebhookEndpointView } from '../../notify/webhooks.js';
import { isAddressAllowed, parseAllowList } from '../../oauth/outbound.js';
import type { PageOptions } from '../../ui/layout.js';
import type { FormValues } from '../../ui/pages/admin/forms.js';
import { webhookPage, webhooksPage } from '../../ui/pages/admin/webhooks.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { parseRequest, withSpec } from '../openapi/route-spec.js';
import { Problem } from '../problem.js';
import { parseInput } from '../validate.js';
import { adminPageGuard, fieldErrorsOf, sendPageWith } from './admin-console-support.js';
import * as spec from './admin-webhook-specs.js';
import {
  adminDeliveryParams,
  adminWebhookBody,
  adminWebhookParams,
  adminWebhookPatchBody,
} from './admin-webhook-specs.js';
import { sendPage } from './pages.js';

// Webhook endpoints for administrators: the JSON API (`/api/v1/admin/webhooks`) and the console
// (`/admin/webhooks`), both through the actions below (same checks, same audit rows). Secrets are
// write-only: sealed when given, never shown; an endpoint of the config file is read-only.

const notFound = () => new Problem(404, 'not_found', 'Not Found', 'No such webhook endpoint.');
const fromConfig = () =>
  new Problem(409, 'conflict', 'Conflict', 'This endpoint comes from the config file; change it there.');
const duplicateUrl = () =>
  new Problem(409, 'conflict', 'Conflict', 'An endpoint with this url exists already.', {
    errors: [{ path: 'body.url', message: 'is already an endpoint' }],
  });

export function registerAdminWebhookRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;
  const admin = (request: FastifyRequest) => requireAdmin(request, publicUrl);

  /**
   * An endpoint at an address the outbound policy refuses could never be reached: said now, not
   * at the first delivery. (A host name is judged when it is resolved, at each delivery.)
   */
  const allowList = parseAllowList(ctx.config.outbound.allow);
  const refusedTarget = (url: string): boolean => {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (host === 'localhost') return !isAddressAllowed('127.0.0.1', allowList);
    return isIP(host) !== 0 && !isAddressAllowed(host, allowList);
  };
  const requireAllowed = (url: string) => {
    if (!refusedTarget(url)) return;
    throw new Problem(
      400,
      'validation_failed',
      'Bad Request',
      'body.url: is refused by the outbound policy',
      {
        errors: [
          {
            path: 'body.url',
            message:
              'is refused by the outbound policy (loopback, private and link-local addresses need outbound.allow)',
          },
        ],
      },
    );
  };
  const endpointOr404 = async (params: unknown): Promise<WebhookEndpointView> => {
    const parsed = adminWebhookParams.safeParse(params);
    const found = parsed.success
      ? (await ctx.webhooks.listEndpoints()).find((e) => e.id === parsed.data.id)
      : undefined;
    if (found === undefined) throw notFound();
    return found;
  };

  const actions = {
    async create(actor: Identity, input: unknown) {
      const body = parseInput(adminWebhookBody, input, 'body');
      requireAllowed(body.url);
      if ((await ctx.webhooks.listEndpoints()).some((e) => e.url === body.url)) throw duplicateUrl();
      const created = await ctx.webhooks.createEndpoint(body);
      await ctx.audit.record({
        actor: actor.userId,
        action: 'admin.webhook_saved',
        targetType: 'webhook',
        targetId: created.id,
        data: { url: created.url, events: created.events },
      });
      return created;
    },
    /** Changes the members given; `secret` rotates it (the audit says `rotated`, never the value). */
    async update(actor: Identity, params: unknown, input: unknown) {
      const current = await endpointOr404(params);
      if (current.source === 'config') throw fromConfig();
      const change = parseInput(adminWebhookPatchBody, input, 'body');
      if (change.url !== undefined && change.url !== current.url) {
        requireAllowed(change.url);
        if ((await ctx.webhooks.listEndpoints()).some((e) => e.url === change.url)) throw duplicateUrl();
      }
      const outcome = await ctx.webhooks.updateEndpoint(current.id, change);
      if (outcome === 'missing') throw notFound();
      if (outcome === 'from_config') throw fromConfig();
      const updated = await endpointOr404({ id: current.id });
      await ctx.audit.record({
        actor: actor.userId,
        action: 'admin.webhook_updated',
        targetType: 'webhook',
        targetId: current.id,
        data: {
          fields: Object.keys(change).sort(),
          url: updated.url,
          events: updated.events,
          enabled: updated.enabled,
          ...(change.secret === undefined ? {} : { secret: 'rotated' }),
        },
      });
      return updated;
    },
    async remove(actor: Identity, params: unknown) {
      const parsed = adminWebhookParams.safeParse(params);
      const outcome = parsed.success ? await ctx.webhooks.deleteEndpoint(parsed.data.id) : 'missing';
      if (outcome === 'missing') throw notFound();
      if (outcome === 'from_config') throw fromConfig();
      await ctx.audit.record({
        actor: actor.userId,
        action: 'admin.webhook_deleted',
        targetType: 'webhook',
        targetId: (parsed as { data: { id: string } }).data.id,
      });
    },
    async redeliver(actor: Identity, params: unknown) {
      const parsed = adminDeliveryParams.safeParse(params);
      const id = parsed.success ? await ctx.webhooks.redeliver(parsed.data.id) : undefined;
      if (id === undefined) {
        throw new Problem(
          404,
          'not_found',
          'Not Found',
          'No such delivery, or its endpoint is gone or disabled.',
        );
      }
      await ctx.audit.record({
        actor: actor.userId,
        action: 'admin.webhook_redelivered',
        targetType: 'webhook_delivery',
        targetId: (parsed as { data: { id: string } }).data.id,
        data: { delivery: id },
      });
      return id;
    },
  };

  // -------------------------------------------------------------------------------------------
  // JSON API

  app.get(spec.adminListWebhooks.url, withSpec(spec.adminListWebhooks), async (request) => {
    admin(request);
    return ctx.webhooks.listEndpoints();
  });

  app.post(spec.adminCreateWebhook.url, withSpec(spec.adminCreateWebhook), async (request, reply) => {
    const created = await actions.create(admin(request), request.body ?? {});
    return reply.code(201).send(created);
  });

  app.patch(spec.adminUpdateWebhook.url, withSpec(spec.adminUpdateWebhook), async (request) =>
    actions.update(admin(request), request.params, request.body ?? {}),
  );

  app.delete(spec.adminDeleteWebhook.url, withSpec(spec.adminDeleteWebhook), async (request, reply) => {
    await actions.remove(admin(request), request.params);
    return reply.code(204).send();
  });

  app.get(spec.adminListDeliveries.url, withSpec(spec.adminListDeliveries), async (request) => {
    admin(request);
    const { query: q } = parseRequest(spec.adminListDeliveries, request);
    return ctx.webhooks.recentDeliveries({
      ...(q.endpoint === undefined ? {} : { endpointId: q.endpoint }),
      ...(q.limit === undefined ? {} : { limit: q.limit }),
    });
  });

  app.post(spec.adminRedeliver.url, withSpec(spec.adminRedeliver), async (request, reply) => {
    return reply.code(201).send({ id: await actions.redeliver(admin(request), request.params) });
  });

  // -------------------------------------------------------------------------------------------
  // Console pages (server-rendered, no script needed; every action a POST with the CSRF token)

  const guard = adminPageGuard(ctx);
  const flashOf = (request: FastifyRequest) => {
    const key = (request.query as Record<string, unknown> | undefined)?.done;
    return typeof key === 'string' && Object.hasOwn(flashes, key) ? flashes[key] : undefined;
  };
  const eventsOf = (form: Record<string, unknown>) =>
    form.events === undefined ? undefined : [form.events].flat().map(String);

  app.get(spec.adminWebhooksPage.url, withSpec(spec.adminWebhooksPage), async (request, reply) => {
    const identity = guard(request, reply);
    if (identity === undefined) return reply;
    const [endpoints, deliveries] = await Promise.all([
      ctx.webhooks.listEndpoints(),
      ctx.webhooks.recentDeliveries({ limit: 50 }),
    ]);
    return sendPage(
      reply,
      webhooksPage({ admin: identity, endpoints, deliveries, flash: flashOf(request) }).value,
    );
  });

  app.post(spec.adminAddWebhookForm.url, withSpec(spec.adminAddWebhookForm), async (request, reply) => {
    const identity = admin(request);
    const form = (request.body ?? {}) as Record<string, unknown>;
    const events = eventsOf(form);
    const body = parseInput(
      adminWebhookBody,
      { url: form.url, secret: form.secret, ...(events === undefined ? {} : { events }) },
      'body',
    );
    if (refusedTarget(body.url)) return reply.redirect('/admin/webhooks?done=webhook_refused', 303);
    try {
      await actions.create(identity, body);
    } catch (error) {
      if (error instanceof Problem && error.code === 'conflict') {
        return reply.redirect('/admin/webhooks?done=webhook_exists', 303);
      }
      throw error;
    }
    return reply.redirect('/admin/webhooks?done=webhook_added', 303);
  });

  app.get(spec.adminWebhookPage.url, withSpec(spec.adminWebhookPage), async (request, reply) => {
    const identity = guard(request, reply);
    if (identity === undefined) return reply;
    const endpoint = await endpointOr404(request.params);
    const values: FormValues = { url: endpoint.url, enabled: endpoint.enabled ? 'on' : undefined };
    return sendPage(
      reply,
      webhookPage({ admin: identity, endpoint, values, events: endpoint.events ?? [], errors: [] }).value,
    );
  });

  app.post(spec.adminEditWebhookForm.url, withSpec(spec.adminEditWebhookForm), async (request, reply) => {
    const identity = admin(request);
    const { body: form } = parseRequest(spec.adminEditWebhookForm, request);
    const endpoint = await endpointOr404(request.params);
    const events = eventsOf(form) ?? null;
    const change = {
      url: form.url.trim(),
      events,
      enabled: form.enabled === 'on',
      ...(form.secret === undefined || form.secret === '' ? {} : { secret: form.secret }),
    };
    try {
      await actions.update(identity, request.params, change);
    } catch (error) {
      // What was typed comes back, bar the secret; each error beside its field.
      const values: FormValues = { url: form.url, enabled: form.enabled };
      const status = error instanceof Problem && error.status === 409 ? 409 : 400;
      return sendPageWith(
        reply,
        status,
        webhookPage({ admin: identity, endpoint, values, events: events ?? [], errors: fieldErrorsOf(error) })
          .value,
      );
    }
    return reply.redirect('/admin/webhooks?done=webhook_updated', 303);
  });

  app.post(spec.adminDeleteWebhookForm.url, withSpec(spec.adminDeleteWebhookForm), async (request, reply) => {
    await actions.remove(admin(request), request.params);
    return reply.redirect('/admin/webhooks?done=webhook_deleted', 303);
  });

  app.post(spec.adminRedeliverForm.url, withSpec(spec.adminRedeliverForm), async (request, reply) => {
    await actions.redeliver(admin(request), request.params);
    return reply.redirect('/admin/webhooks?done=redelivering', 303);
  });
}

const flashes: Record<string, NonNullable<PageOptions['flash']>> = {
  webhook_added: {
    kind: 'success',
    text: 'Endpoint added. Its secret is stored sealed and is not shown again.',
  },
  webhook_updated: {
    kind: 'success',
    text: 'Endpoint saved. A new secret, if you typed one, is not shown again.',
  },
  webhook_exists: { kind: 'error', text: 'An endpoint with this URL exists already.' },
  webhook_refused: {
    kind: 'error',
    text: 'That address is refused by the outbound policy (loopback, private and link-local addresses need outbound.allow).',
  },
  webhook_deleted: { kind: 'success', text: 'Endpoint deleted; its pending deliveries stopped.' },
  redelivering: { kind: 'info', text: 'The event is queued for delivery again.' },
};
