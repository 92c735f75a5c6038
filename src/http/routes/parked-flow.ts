import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parkedFlowPath } from '../../connections/authorization-flow.js';
import { parkedFlowPage } from '../../ui/pages/parked-flow.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, withSpec } from '../openapi/route-spec.js';
import { errorPage, withOutcome } from './connect.js';
import { signInRedirect } from './pages.js';

const params = z.strictObject({ id: z.uuid() });

const parkedPage = defineRoute({
  method: 'GET',
  url: `${parkedFlowPath}/:id`,
  operationId: 'parkedFlowPage',
  summary: 'A sign-in that finished in another browser than the one that started it: asks first',
  tags: ['Browser flow'],
  auth: 'session',
  params,
  responses: {
    200: { description: 'The question', contentType: 'text/html' },
    404: { description: 'Nothing to confirm', contentType: 'text/html' },
  },
});

const parkedAnswer = defineRoute({
  method: 'POST',
  url: `${parkedFlowPath}/:id`,
  operationId: 'parkedFlowAnswer',
  summary: 'The answer: connect, or cancel',
  tags: ['Browser flow'],
  auth: 'session',
  params,
  bodyType: 'form',
  body: z.object({ decision: z.enum(['connect', 'cancel']), _csrf: z.string().optional() }),
  responses: {
    303: { description: 'To `return_to` with the outcome' },
    404: { description: 'Nothing to confirm', contentType: 'text/html' },
  },
});

const gone = 'This request expired, was already answered, or belongs to another browser.';

/**
 * `GET /oauth/confirm/:id` shows a parked flow (see `parkedFlowPage`); `POST` answers it with
 * the CSRF token, from the same session that received the callback. @see docs/security.md
 */
export function registerParkedFlowRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  app.get(parkedPage.url, withSpec(parkedPage), async (request, reply) => {
    if (request.identity === undefined) return signInRedirect(ctx, request, reply);
    const identity = requireUser(request, publicUrl);
    const { id } = parseRequest(parkedPage, request).params;
    const parked = await ctx.flow.confirmations.parked(identity.userId, id, identity.browserBinding);
    if (parked === undefined) return errorPage(reply, 404, 'Nothing to confirm', gone);
    const integration = await ctx.catalog.getIntegration(parked.integrationId);
    return reply.type('text/html; charset=utf-8').send(
      parkedFlowPage({
        identity,
        id: parked.id,
        integration: { id: parked.integrationId, name: integration?.name ?? parked.integrationId },
        reconnect: parked.reconnect,
        account: parked.account,
      }).value,
    );
  });

  app.post(parkedAnswer.url, withSpec(parkedAnswer), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const { params: p, body } = parseRequest(parkedAnswer, request);
    const { id } = p;
    const { decision } = body;
    const result = await ctx.flow.confirmations.resolveParked(
      identity.userId,
      id,
      identity.browserBinding,
      decision,
    );
    if (result === undefined) return errorPage(reply, 404, 'Nothing to confirm', gone);
    request.log.info({ outcome: result.outcome, integration: result.integrationId }, 'parked flow answered');
    if (result.outcome === 'confirm') {
      return reply.redirect(`/connections/${result.connectionId}/confirm/${result.confirmationId}`, 303);
    }
    if (result.outcome === 'confirm_browser')
      throw new Error('unreachable: an answered flow is not parked again');
    if (result.outcome === 'failed' && result.reason === 'cancelled') {
      return reply.redirect(withOutcome(result.returnTo, 'cancelled'), 303);
    }
    return reply.redirect(
      withOutcome(
        result.returnTo,
        result.outcome,
        'connectionId' in result ? result.connectionId : undefined,
      ),
      303,
    );
  });
}
