import { z } from 'zod';
import { callbackPath } from '../../connections/authorization-flow.js';
import { defineRoute, problem } from '../openapi/route-spec.js';
import { clientMetadataSchema } from '../openapi/schemas.js';

/**
 * The declarations of the browser flow's routes (connect.ts): their input schemas, which the
 * handlers validate with, and their answers, which the OpenAPI document describes.
 */

const integrationParams = z.strictObject({
  integrationId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/)
    .describe('The integration id'),
});
/** An elicitation id of the MCP gateway: 32 random bytes, base64url. */
const elicitationId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/, 'must be an elicitation id')
  .describe('The MCP gateway’s elicitation this Connect answers (opaque)');
const returnTo = z
  .string()
  .optional()
  .describe('A same-origin path the browser returns to with `?outcome=` (default `/`)');
const display = z
  .enum(['page', 'popup'])
  .optional()
  .describe(
    '`popup`: opened by `nunq-connect/client` `connect()`; finishes at `/embed/done`, which tells the opener',
  );
const flowPageResponses = {
  200: { description: 'The confirmation page', contentType: 'text/html' },
  302: { description: 'Not signed in (dev mode): to `/dev/login`' },
  401: { description: 'Not signed in: a page saying so', contentType: 'text/html' },
  404: problem('integration_not_found'),
} as const;

export const clientMetadata = defineRoute({
  method: 'GET',
  url: '/oauth/client-metadata.json',
  operationId: 'getClientMetadata',
  summary: 'Our Client ID Metadata Document, for MCP authorization servers',
  tags: ['MCP gateway'],
  auth: 'none',
  responses: { 200: { description: 'The document', json: clientMetadataSchema } },
});

export const connectPage = defineRoute({
  method: 'GET',
  url: '/connect/:integrationId',
  operationId: 'connectPage',
  summary: 'Connect confirmation page: its button (a POST with the CSRF token) starts the flow',
  description:
    'A link or redirect here never starts a flow by itself. With `display=popup` (the host ' +
    'platform’s embedded Connect button) the flow ends at `/embed/done`, which posts the outcome ' +
    'to the opener when the opener’s origin is listed in `server.embedOrigins`.',
  tags: ['Browser flow'],
  auth: 'session',
  params: integrationParams,
  query: z.object({ return_to: returnTo, elicitation: elicitationId.optional(), display }),
  responses: flowPageResponses,
});

export const connectForm = defineRoute({
  method: 'POST',
  url: '/connect/:integrationId',
  operationId: 'connectForm',
  summary: 'The confirmation page’s Connect button: 303 to the provider’s sign-in',
  tags: ['Browser flow'],
  auth: 'session',
  params: integrationParams,
  bodyType: 'form',
  body: z.strictObject({
    return_to: returnTo,
    elicitation: elicitationId.optional(),
    display,
    _csrf: z.string().optional().describe('The session’s CSRF token'),
  }),
  responses: {
    303: { description: 'To the provider', headers: { location: 'The provider’s authorization URL' } },
    403: problem('csrf_failed'),
    404: problem('integration_not_found'),
  },
});

const confirmParams = z.strictObject({ id: z.uuid(), confirmationId: z.uuid() });

export const accountConfirmPage = defineRoute({
  method: 'GET',
  url: '/connections/:id/confirm/:confirmationId',
  operationId: 'accountConfirmPage',
  summary: 'Asks whether a reconnect with another account may replace the connected one',
  tags: ['Browser flow'],
  auth: 'session',
  params: confirmParams,
  responses: {
    200: { description: 'The question', contentType: 'text/html' },
    404: { description: 'Nothing to confirm', contentType: 'text/html' },
  },
});

export const accountConfirm = defineRoute({
  method: 'POST',
  url: '/connections/:id/confirm/:confirmationId',
  operationId: 'accountConfirm',
  summary: 'The answer: replace the account, or keep the old one',
  tags: ['Browser flow'],
  auth: 'session',
  params: confirmParams,
  bodyType: 'form',
  body: z.object({ decision: z.enum(['replace', 'keep']), _csrf: z.string().optional() }),
  responses: {
    303: { description: 'To `return_to` with the outcome' },
    404: { description: 'Nothing to confirm', contentType: 'text/html' },
  },
});

export const oauthCallback = defineRoute({
  method: 'GET',
  url: callbackPath,
  operationId: 'oauthCallback',
  summary: 'Where providers send the browser back: finishes the flow, then 302 to `return_to`',
  description:
    '`return_to` gets `?outcome=connected|reconnected|denied|failed&connection=<id>`. The query ' +
    '(`code`, `state`, `error`…) is the provider’s (RFC 6749 §4.1.2, RFC 9207 `iss`).',
  tags: ['Browser flow'],
  auth: 'session',
  responses: {
    302: { description: 'To `return_to` with the outcome, or to a confirmation page' },
    400: {
      description: 'A response that cannot be used (unknown, expired or used state)',
      contentType: 'text/html',
    },
    401: { description: 'The session ended before the sign-in finished', contentType: 'text/html' },
  },
});
