import { z } from 'zod';
import { defineRoute, problem } from '../openapi/route-spec.js';
import {
  adminAuditEntrySchema,
  adminConnectionOverviewSchema,
  adminConnectionSchema,
  adminNotificationSchema,
} from '../openapi/schemas.js';
import { integrationIdSchema } from '../validate.js';

// The admin operations routes' one declaration (admin-operations.ts registers them): the input
// schemas the handlers validate with, and the answers the OpenAPI document describes.

export const connectionStatus = z.enum(['active', 'needs_reauth']);

export const adminConnectionsQuery = z.strictObject({
  status: connectionStatus.optional(),
  integration: integrationIdSchema().optional(),
  user: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000).optional(),
});

export const adminConnectionParams = z.strictObject({ id: z.uuid() });

/** An ISO 8601 time or milliseconds since the epoch. */
const instant = z.string().transform((s, ctx) => {
  const ms = /^\d{1,15}$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 time or milliseconds since the epoch' });
    return z.NEVER;
  }
  return ms;
});

export const adminAuditQuery = z.strictObject({
  user: z.string().min(1).max(256).optional(),
  integration: integrationIdSchema().optional(),
  action: z
    .string()
    .regex(/^[a-z_]+\.[a-z_]+$/, 'must be an audit action such as connection.deleted')
    .optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: z.coerce.number().int().positive().optional(),
  format: z.enum(['json', 'jsonl']).optional(),
});

const notAdmin = problem('Signed in but not an administrator (the admin surface is not advertised)');
const noSuchConnection = problem('No such connection (connection_not_found)');
const admin = { tags: ['Admin'], auth: 'admin' as const };

export const adminListConnections = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/connections',
  operationId: 'adminListConnections',
  summary: "Every user's connections with their health (never a token), filtered",
  ...admin,
  query: adminConnectionsQuery,
  responses: {
    200: { description: 'Connections, newest change first', json: z.array(adminConnectionSchema) },
    400: problem('validation_failed'),
    404: notAdmin,
  },
});

export const adminConnectionOverview = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/connections/overview',
  operationId: 'adminConnectionOverview',
  summary: 'Connections counted by integration and status',
  ...admin,
  responses: { 200: { description: 'Counts', json: z.array(adminConnectionOverviewSchema) }, 404: notAdmin },
});

export const adminGetConnection = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/connections/:id',
  operationId: 'adminGetConnection',
  summary: "One user's connection (never a token)",
  ...admin,
  params: adminConnectionParams,
  responses: { 200: { description: 'The connection', json: adminConnectionSchema }, 404: noSuchConnection },
});

export const adminRefreshConnection = defineRoute({
  method: 'POST',
  url: '/api/v1/admin/connections/:id/refresh',
  operationId: 'adminRefreshConnection',
  summary: 'Forces a refresh now; the outcome and the connection afterwards',
  ...admin,
  params: adminConnectionParams,
  responses: {
    200: {
      description:
        'refreshed; needs_reauth (the provider refused: its user must reconnect); unavailable (down, throttling or misconfigured: nothing changed)',
      json: z.object({
        outcome: z.enum(['refreshed', 'needs_reauth', 'unavailable']),
        connection: adminConnectionSchema,
      }),
    },
    404: noSuchConnection,
  },
});

export const adminDeleteConnection = defineRoute({
  method: 'DELETE',
  url: '/api/v1/admin/connections/:id',
  operationId: 'adminDeleteConnection',
  summary: "Disconnects a user's connection (revoked at the provider where it can)",
  ...admin,
  params: adminConnectionParams,
  responses: { 204: { description: 'Disconnected' }, 404: noSuchConnection },
});

export const adminListAudit = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/audit',
  operationId: 'adminListAudit',
  summary: 'The audit log, newest first, filtered; format=jsonl exports every matching entry',
  ...admin,
  query: adminAuditQuery,
  responses: {
    200: {
      description: 'Audit entries (JSON), or with format=jsonl one entry per line (application/jsonl)',
      json: z.array(adminAuditEntrySchema),
    },
    400: problem('validation_failed'),
    404: notAdmin,
  },
});

export const adminListNotifications = defineRoute({
  method: 'GET',
  url: '/api/v1/admin/notifications',
  operationId: 'adminListNotifications',
  summary: "The administrators' notifications (provider.config_error), resolved ones included",
  ...admin,
  responses: { 200: { description: 'Notifications', json: z.array(adminNotificationSchema) }, 404: notAdmin },
});

const page = (description: string) => ({ 200: { description, contentType: 'text/html' }, 404: notAdmin });
const form = z.object({ _csrf: z.string().describe('The session’s CSRF token') });
const back = (to: string) => ({
  303: { description: `Back to ${to} with the outcome`, headers: { location: to } },
});
const console_ = { tags: ['Admin'], auth: 'session' as const };

export const adminConnectionsPage = defineRoute({
  method: 'GET',
  url: '/admin/connections',
  operationId: 'adminConnectionsPage',
  summary: "The console's connections page (filters as query parameters; empty means any)",
  ...console_,
  responses: page('HTML page'),
});

export const adminRefreshForm = defineRoute({
  method: 'POST',
  url: '/admin/connections/:id/refresh',
  operationId: 'adminRefreshForm',
  summary: 'The console’s Refresh now button',
  ...console_,
  params: adminConnectionParams,
  bodyType: 'form',
  body: form,
  responses: back('/admin/connections?done=refresh_<outcome>'),
});

export const adminDisconnectPage = defineRoute({
  method: 'GET',
  url: '/admin/connections/:id/disconnect',
  operationId: 'adminDisconnectPage',
  summary: 'Asks before disconnecting a user’s connection',
  ...console_,
  params: adminConnectionParams,
  responses: page('HTML confirmation page'),
});

export const adminDisconnectForm = defineRoute({
  method: 'POST',
  url: '/admin/connections/:id/disconnect',
  operationId: 'adminDisconnectForm',
  summary: 'The confirmation page’s Disconnect button',
  ...console_,
  params: adminConnectionParams,
  bodyType: 'form',
  body: form,
  responses: back('/admin/connections?done=disconnected'),
});

export const adminAuditPage = defineRoute({
  method: 'GET',
  url: '/admin/audit',
  operationId: 'adminAuditPage',
  summary: "The console's audit log (filters as query parameters; empty means any)",
  ...console_,
  responses: page('HTML page'),
});
