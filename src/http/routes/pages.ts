import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { listUserIntegrations } from '../../connections/integration-status.js';
import type { Identity } from '../../identity/identity.js';
import { html } from '../../ui/html.js';
import { layout, type PageOptions } from '../../ui/layout.js';
import { integrationsPage } from '../../ui/pages/integrations.js';
import type { AppContext } from '../context.js';
import { defineRoute, withSpec } from '../openapi/route-spec.js';

const integrationsPageRoute = defineRoute({
  method: 'GET',
  url: '/',
  operationId: 'integrationsPage',
  summary: 'The Integrations page: Connect, Reconnect, Disconnect; notifications',
  tags: ['Browser flow'],
  auth: 'session',
  responses: {
    200: { description: 'HTML page', contentType: 'text/html' },
    302: { description: 'Not signed in (dev mode): to `/dev/login`' },
    401: { description: 'Not signed in: a page saying so', contentType: 'text/html' },
  },
});

/** Flash messages for a flow's outcome (`?outcome=<key>`): fixed texts, never echoed input. */
export const flashMessages = {
  connected: { kind: 'success', text: 'Connected.' },
  reconnected: { kind: 'success', text: 'Reconnected.' },
  disconnected: { kind: 'info', text: 'Disconnected.' },
  cancelled: { kind: 'info', text: 'Cancelled. Nothing was connected.' },
  denied: { kind: 'error', text: 'You did not grant access, so nothing was connected. You can try again.' },
  failed: {
    kind: 'error',
    text: 'The connection could not be completed. Nothing was changed; please try again.',
  },
} as const satisfies Record<string, NonNullable<PageOptions['flash']>>;

export type FlashKey = keyof typeof flashMessages;

function flashFrom(request: FastifyRequest): PageOptions['flash'] {
  const key = (request.query as Record<string, unknown>).outcome;
  return typeof key === 'string' && Object.hasOwn(flashMessages, key)
    ? flashMessages[key as FlashKey]
    : undefined;
}

/**
 * The flash for a sign-in refused because the account belongs to another organisation
 * (`?outcome=failed&reason=wrong_tenant&integration=<id>`): names the organisation the
 * integration accepts, from the provider's configuration (never from the query).
 */
async function wrongTenantFlash(ctx: AppContext, request: FastifyRequest): Promise<PageOptions['flash']> {
  const q = request.query as Record<string, unknown>;
  if (q.outcome !== 'failed' || q.reason !== 'wrong_tenant' || typeof q.integration !== 'string')
    return undefined;
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(q.integration)) return undefined;
  const integration = await ctx.catalog.getIntegration(q.integration);
  const provider = integration?.providerId
    ? await ctx.catalog.getProvider(integration.providerId)
    : undefined;
  const tenant = provider?.settings.tenant;
  if (integration === undefined || typeof tenant !== 'string') return undefined;
  const params = provider?.settings.authorizationParams as Record<string, unknown> | undefined;
  const domain = typeof params?.domain_hint === 'string' ? params.domain_hint : undefined;
  // A tenant configured by domain name is that organisation's name already.
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenant);
  const organisation = !byId
    ? domain === undefined || domain === tenant
      ? tenant
      : `${domain} (${tenant})`
    : domain === undefined
      ? `with tenant id ${tenant}`
      : `${domain} (tenant id ${tenant})`;
  return {
    kind: 'error',
    text: `${integration.name} accepts only accounts of the organisation ${organisation}. You signed in with an account of another organisation, so nothing was connected. Sign in with an account of that organisation to connect.`,
  };
}

/** Sends a browser that is not signed in to where it can sign in. */
export function signInRedirect(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (ctx.config.auth.mode === 'dev') {
    return reply.redirect(`/dev/login?return_to=${encodeURIComponent(request.url)}`, 302);
  }
  return reply
    .code(401)
    .type('text/html; charset=utf-8')
    .send(
      layout({
        title: 'Sign in',
        body: html`<h1>Please sign in</h1><p>Open nunq connect from the nunq platform, which signs you in.</p>`,
      }).value,
    );
}

/** Renders an HTML page for a signed-in user, or sends the browser to sign in. */
export function sendPage(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(body);
}

/** Why a connection needs reconnecting, for its banner: fixed texts chosen by the stored reason. */
function reauthText(reason: unknown): string {
  if (reason === 'unreadable') return 'the stored sign-in could not be read; reconnect to continue.';
  if (reason === 'authorization_server_changed') {
    return 'the server now signs in through another authorization server; reconnect to continue.';
  }
  return 'the provider no longer accepts its sign-in.';
}

/** `GET /`: the Integrations page. */
export function registerPageRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get(integrationsPageRoute.url, withSpec(integrationsPageRoute), async (request, reply) => {
    const identity: Identity | undefined = request.identity;
    if (identity === undefined) return signInRedirect(ctx, request, reply);
    const [integrations, open, discovery] = await Promise.all([
      listUserIntegrations(ctx.catalog, ctx.connections, identity),
      ctx.notifications.list(identity.userId, { unresolvedOnly: true }),
      ctx.mcpDiscovery.list(),
    ]);
    const names = new Map(integrations.map((i) => [i.id, i.name]));
    const notifications = open
      .filter((n) => n.type === 'connection.needs_reauth')
      .map((n) => ({
        id: n.id,
        type: n.type,
        connectionId: n.connectionId,
        text: `${names.get(String(n.data.integration)) ?? 'A connection'} needs reconnecting: ${reauthText(n.data.reason)}`,
      }));
    return sendPage(
      reply,
      integrationsPage({
        identity,
        integrations,
        notifications,
        problems: new Map(
          [...discovery.values()].flatMap((d) =>
            d.problem === undefined ? [] : [[d.integrationId, d.problem]],
          ),
        ),
        flash: (await wrongTenantFlash(ctx, request)) ?? flashFrom(request),
      }).value,
    );
  });
}
