import { z } from 'zod';
import { webhookEventTypes, webhookSchema } from '../../config/schema.js';
import { defineRoute, problem } from '../openapi/route-spec.js';
import { adminWebhookDeliverySchema, adminWebhookEndpointSchema } from '../openapi/schemas.js';

// The webhook routes' one declaration (admin-webhooks.ts registers them): the JSON admin API and
// the console's pages, with the input schemas the handlers validate with.

export const adminWebhookBody = webhookSchema;
/**
 * PATCH: the members to change; a member left out is kept (the secret too). `secret` rotates the
 * signing secret (write-only); `events: null` sends every event.
 */
export const adminWebhookPatchBody = z.strictObject({
  url: webhookSchema.shape.url.optional(),
  secret: webhookSchema.shape.secret.optional(),
  events: z.array(z.enum(webhookEventTypes)).min(1).nullable().optional(),
  enabled: z.boolean().optional(),
});
export const adminWebhookParams = z.strictObject({ id: z.string().regex(/^(wh|cfg)_[A-Za-z0-9-]{1,64}$/) });
export const adminDeliveryParams = z.strictObject({ id: z.uuid() });

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const admin = { tags: ['Admin'], auth: 'admin' as const };
const page = (description: string) => ({ 200: { description, contentType: 'text/html' }, 404: notAdmin });
const form = z.object({ _csrf: z.string().describe('The session’s CSRF token') });
const back = (to: string) => ({
  303: { description: `Back to ${to} with the outcome`, headers: { location: to } },
});
const console_ = { tags: ['Admin'], auth: 'session' as const };

export const adminListWebhooks = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/webhooks',
  operationId: 'adminListWebhooks',
  summary: 'Webhook endpoints (secrets write-only)',
  ...admin,
  responses: { 200: { description: 'Endpoints', json: z.array(adminWebhookEndpointSchema) }, 404: notAdmin },
});

export const adminCreateWebhook = defineRoute({
  method: 'POST',
  url: '/api/v1/admin/webhooks',
  operationId: 'adminCreateWebhook',
  summary: 'Adds a webhook endpoint; its secret is sealed and never shown again',
  ...admin,
  body: adminWebhookBody,
  responses: {
    201: { description: 'The endpoint', json: adminWebhookEndpointSchema },
    400: problem('validation_failed, or an address the outbound policy refuses'),
    409: problem('An endpoint with this url exists already'),
  },
});

export const adminDeleteWebhook = defineRoute({
  method: 'DELETE',
  url: '/api/v1/admin/webhooks/:id',
  operationId: 'adminDeleteWebhook',
  summary: 'Removes an endpoint added at run time (its pending deliveries stop)',
  ...admin,
  params: adminWebhookParams,
  responses: {
    204: { description: 'Deleted' },
    404: problem('No such endpoint'),
    409: problem('The endpoint comes from the config file'),
  },
});

export const adminListDeliveries = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/webhooks/deliveries',
  operationId: 'adminListDeliveries',
  summary: 'Recent webhook deliveries and their outcome',
  ...admin,
  query: z.strictObject({
    endpoint: adminWebhookParams.shape.id.optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
  }),
  responses: {
    200: { description: 'Deliveries, newest first', json: z.array(adminWebhookDeliverySchema) },
    400: problem('validation_failed'),
    404: notAdmin,
  },
});

export const adminRedeliver = defineRoute({
  method: 'POST',
  url: '/api/v1/admin/webhooks/deliveries/:id/redeliver',
  operationId: 'adminRedeliver',
  summary: 'Sends a delivery’s event again (same event id) as a new delivery',
  ...admin,
  params: adminDeliveryParams,
  responses: {
    201: { description: 'The new delivery', json: z.object({ id: z.string() }) },
    404: problem('No such delivery, or its endpoint is gone or disabled'),
  },
});

export const adminWebhooksPage = defineRoute({
  method: 'GET',
  url: '/admin/webhooks',
  operationId: 'adminWebhooksPage',
  summary: "The console's webhooks page",
  ...console_,
  responses: page('HTML page'),
});

export const adminAddWebhookForm = defineRoute({
  method: 'POST',
  url: '/admin/webhooks',
  operationId: 'adminAddWebhookForm',
  summary: 'The console’s Add endpoint form',
  ...console_,
  bodyType: 'form',
  body: z.object({
    _csrf: z.string(),
    url: z.string(),
    secret: z.string(),
    events: z.union([z.string(), z.array(z.string())]).optional(),
  }),
  responses: back('/admin/webhooks?done=<outcome>'),
});

export const adminDeleteWebhookForm = defineRoute({
  method: 'POST',
  url: '/admin/webhooks/:id/delete',
  operationId: 'adminDeleteWebhookForm',
  summary: 'The console’s Delete button of an endpoint added there',
  ...console_,
  params: adminWebhookParams,
  bodyType: 'form',
  body: form,
  responses: back('/admin/webhooks?done=webhook_deleted'),
});

export const adminRedeliverForm = defineRoute({
  method: 'POST',
  url: '/admin/webhooks/deliveries/:id/redeliver',
  operationId: 'adminRedeliverForm',
  summary: 'The console’s Redeliver button',
  ...console_,
  params: adminDeliveryParams,
  bodyType: 'form',
  body: form,
  responses: back('/admin/webhooks?done=redelivering'),
});

export const adminUpdateWebhook = defineRoute({
  method: 'PATCH',
  url: '/api/v1/admin/webhooks/:id',
  operationId: 'adminUpdateWebhook',
  summary: 'Edits an endpoint added at run time: url, events, enabled, or a new secret (write-only)',
  ...admin,
  params: adminWebhookParams,
  body: adminWebhookPatchBody,
  responses: {
    200: { description: 'The endpoint', json: adminWebhookEndpointSchema },
    400: problem('validation_failed, or an address the outbound policy refuses'),
    404: problem('No such endpoint'),
    409: problem('The endpoint comes from the config file, or another endpoint has this url'),
  },
});

export const adminWebhookPage = defineRoute({
  method: 'GET',
  url: '/admin/webhooks/:id',
  operationId: 'adminWebhookPage',
  summary: 'The console’s page of one endpoint: its edit form (read-only when from the config file)',
  ...console_,
  params: adminWebhookParams,
  responses: page('HTML page'),
});

export const adminEditWebhookForm = defineRoute({
  method: 'POST',
  url: '/admin/webhooks/:id',
  operationId: 'adminEditWebhookForm',
  summary: 'The console’s Save button of an endpoint (an empty secret keeps the current one)',
  ...console_,
  params: adminWebhookParams,
  bodyType: 'form',
  body: z.object({
    _csrf: z.string(),
    url: z.string(),
    secret: z.string().optional(),
    enabled: z.literal('on').optional(),
    events: z.union([z.string(), z.array(z.string())]).optional(),
  }),
  responses: {
    ...back('/admin/webhooks?done=webhook_updated'),
    400: { description: 'The form again, naming the fields at fault', contentType: 'text/html' },
    409: {
      description: 'The form again: the URL is another endpoint’s, or the endpoint is the file’s',
      contentType: 'text/html',
    },
  },
});
