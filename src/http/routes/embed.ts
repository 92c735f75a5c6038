import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type PopupOutcomeMessage, popupDonePage, popupScriptHash } from '../../ui/pages/popup-done.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { securityHeaders } from '../security-headers.js';
import { integrationIdSchema } from '../validate.js';

/** Where a popup Connect (`/connect/:id?display=popup`) ends: the flow's `return_to`. */
export const popupDonePath = '/embed/done';

const popupDone = defineRoute({
  method: 'GET',
  url: popupDonePath,
  operationId: 'popupDone',
  summary: 'End of a popup Connect: posts the outcome to the opener, then closes',
  description:
    'Posts `{type: "nunq-connect", outcome, integration, connectionId?}` with `postMessage` to ' +
    'each origin of `server.embedOrigins` by name (never `*`), so only an opener with a listed ' +
    'origin receives it. Treat the message as a hint and read the connection through the API.',
  tags: ['Browser flow'],
  auth: 'none',
  query: z.object({
    integration: integrationIdSchema(),
    outcome: z.enum(['connected', 'reconnected', 'denied', 'failed', 'cancelled']),
    connection: z.uuid().optional(),
    reason: z.enum(['wrong_tenant']).optional(),
  }),
  responses: {
    200: { description: 'HTML page with one hash-allowed script', contentType: 'text/html' },
    400: problem('validation_failed'),
  },
});

/** The page's CSP: ours, with the one inline script allowed by its hash. */
const popupCsp = (securityHeaders['content-security-policy'] ?? '').replace(
  "script-src 'self'",
  `script-src ${popupScriptHash}`,
);

/** `GET /embed/done`: the last page of a Connect opened by the host platform as a popup. */
export function registerEmbedRoutes(app: FastifyInstance, ctx: AppContext): void {
  const origins = ctx.config.server.embedOrigins;
  app.get(popupDone.url, withSpec(popupDone), async (request, reply) => {
    const { query } = parseRequest(popupDone, request);
    const message: PopupOutcomeMessage = {
      type: 'nunq-connect',
      outcome: query.outcome,
      integration: query.integration,
      ...(query.connection === undefined ? {} : { connectionId: query.connection }),
      ...(query.reason === undefined ? {} : { reason: query.reason }),
    };
    return reply
      .header('content-security-policy', popupCsp)
      .type('text/html; charset=utf-8')
      .send(popupDonePage(message, origins).value);
  });
}
