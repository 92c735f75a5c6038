import { z } from 'zod';
import { problemCodes } from '../problem.js';

/**
 * The shapes the HTTP API answers with, as zod schemas: the OpenAPI document is generated from
 * them, the route test validates real answers against that document, and `nunq-connect/client`
 * takes its types from them (`z.output`, type-only imports: the client carries no zod).
 */

const isoTime = z.iso.datetime({ offset: true }).describe('RFC 3339 date-time (UTC)');

/** An RFC 9457 problem, with our `code` and, for a 400, the fields that were wrong. */
export const problemSchema = z
  .object({
    type: z.string().describe('A URI naming the kind of problem'),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().optional().describe('What went wrong, in words written by the service'),
    code: z.enum(problemCodes).describe('Stable machine-readable code: branch on this'),
    instance: z.string().optional().describe('The request path'),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('validation_failed: each wrong field (`body.integration`) and what is wrong with it'),
    retryAfterSeconds: z.number().optional(),
  })
  .loose()
  .meta({ title: 'Problem' });

export const meSchema = z.object({
  id: z.string().describe('The user id (the JWT `sub`)'),
  name: z.string().nullish(),
  role: z.enum(['admin', 'user']),
  csrfToken: z
    .string()
    .optional()
    .describe('Only for a session cookie: send it as `x-csrf-token` on changes'),
});

export const integrationSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(['oauth', 'mcp']),
  status: z.enum(['not_connected', 'active', 'needs_reauth']),
  connectionId: z.uuid().optional(),
});

export const connectionSchema = z.object({
  id: z.uuid(),
  integration: z.string(),
  status: z.enum(['active', 'needs_reauth']),
  statusReason: z.string().nullable().describe('Why it needs reconnecting (a fixed word), else null'),
  account: z.object({ id: z.string().optional(), name: z.string().optional(), email: z.string().optional() }),
  scopes: z.array(z.string()),
  createdAt: isoTime,
  updatedAt: isoTime,
  lastRefreshedAt: isoTime.nullable(),
  accessTokenExpiresAt: isoTime.nullable(),
});

export const authorizationUrlSchema = z.object({
  authorizationUrl: z.url().describe("Send the user's browser here (the provider's sign-in page)"),
});

export const notificationSchema = z.object({
  id: z.uuid(),
  type: z.enum(['connection.needs_reauth', 'provider.config_error']),
  connectionId: z.uuid().nullable(),
  data: z.record(z.string(), z.unknown()),
  createdAt: isoTime,
  readAt: isoTime.nullable(),
  resolvedAt: isoTime.nullable(),
});

export const healthSchema = z.object({ status: z.literal('ok'), database: z.enum(['sqlite', 'postgres']) });

export const clientMetadataSchema = z
  .object({
    client_id: z.url(),
    client_name: z.string(),
    redirect_uris: z.array(z.url()),
    grant_types: z.array(z.string()),
    response_types: z.array(z.string()),
    token_endpoint_auth_method: z.string(),
  })
  .loose()
  .describe('Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document)');

const configSource = z.enum(['config', 'admin']).describe('config: from the config file (read-only)');

export const adminProviderSchema = z.object({
  id: z.string(),
  type: z.string(),
  settings: z.record(z.string(), z.unknown()).describe('Issuer, tenant or endpoints; never a secret'),
  hasCredentials: z.boolean().describe('Whether a client secret or key is set (never returned)'),
  source: configSource,
  enabled: z.boolean(),
  updatedAt: z.number().int().describe('Milliseconds since the epoch'),
});

export const adminIntegrationSchema = z.object({
  id: z.string(),
  kind: z.enum(['oauth', 'mcp']),
  name: z.string(),
  providerId: z.string().nullable(),
  settings: z.record(z.string(), z.unknown()),
  hasCredentials: z.boolean(),
  source: configSource,
  enabled: z.boolean(),
  updatedAt: z.number().int(),
});

export const adminConnectionSchema = z.object({
  id: z.string(),
  user: z.string().describe("The owner's user id"),
  integration: z.string(),
  status: z.enum(['active', 'needs_reauth']),
  statusReason: z.string().nullable(),
  account: z.object({ name: z.string().optional(), email: z.string().optional() }),
  createdAt: isoTime,
  updatedAt: isoTime,
  lastRefreshedAt: isoTime.nullable(),
  nextRefreshAt: isoTime.nullable().describe('When the scheduler refreshes it next'),
  refreshFailures: z.number().int().nonnegative().describe('Consecutive failed refreshes'),
  accessTokenExpiresAt: isoTime.nullable(),
});

export const adminConnectionOverviewSchema = z.object({
  integration: z.string(),
  active: z.number().int().nonnegative(),
  needsReauth: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
});

export const adminAuditEntrySchema = z.object({
  id: z.number().int(),
  at: isoTime,
  actor: z.string(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  user: z.string().nullable().describe('The user the entry concerns (null on entries before migration 0014)'),
  integration: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

export const adminWebhookEndpointSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()).nullable().describe('null: every event type'),
  source: z.enum(['config', 'admin']),
  enabled: z.boolean(),
  hasSecret: z.literal(true).describe('The secret is write-only: never returned'),
  createdAt: isoTime,
});

export const adminWebhookDeliverySchema = z.object({
  id: z.string(),
  endpointId: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().nonnegative(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: isoTime,
  deliveredAt: isoTime.nullable(),
  nextAttemptAt: isoTime.nullable(),
});

export const adminNotificationSchema = z.object({
  id: z.string(),
  type: z.string(),
  connectionId: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  createdAt: isoTime,
  readAt: isoTime.nullable(),
  resolvedAt: isoTime.nullable(),
});

export type ProblemBody = z.output<typeof problemSchema>;
export type Me = z.output<typeof meSchema>;
export type Integration = z.output<typeof integrationSchema>;
export type Connection = z.output<typeof connectionSchema>;
export type AuthorizationUrl = z.output<typeof authorizationUrlSchema>;
export type Notification = z.output<typeof notificationSchema>;
export type AdminProvider = z.output<typeof adminProviderSchema>;
export type AdminIntegration = z.output<typeof adminIntegrationSchema>;
export type AdminConnection = z.output<typeof adminConnectionSchema>;
export type AdminConnectionOverview = z.output<typeof adminConnectionOverviewSchema>;
export type AdminWebhookEndpoint = z.output<typeof adminWebhookEndpointSchema>;
export type AdminWebhookDelivery = z.output<typeof adminWebhookDeliverySchema>;
export type AuditEntry = z.output<typeof adminAuditEntrySchema>;
