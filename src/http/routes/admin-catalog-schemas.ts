import { z } from 'zod';
import { integrationSchema, mcpServerSchema, providerSchema } from '../../config/schema.js';

// Request schemas, named so the OpenAPI document can be built from them. Entries are checked by
// the config file's own schemas: a field is valid in the API exactly when it is valid in YAML.

/** `:id` of a provider, integration or MCP server. */
export const catalogIdParams = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be an id (1-64 lowercase letters, digits, _ and -)'),
});
/** `DELETE …?confirm=true` removes an entry's connections too (revoked at the provider first). */
export const deleteQuery = z.strictObject({ confirm: z.enum(['true', 'false']).optional() });
/** POST /providers: a `providers` entry of the config file, plus `enabled`. */
export const providerCreateBody = providerSchema;
/** The admin-only switch beside a provider entry (providers in the file are always enabled). */
export const providerSwitchBody = z.strictObject({ enabled: z.boolean().optional() });
/** POST /integrations: an `integrations` entry of the config file. */
export const integrationCreateBody = integrationSchema;
/** POST /mcp-servers: an `mcpServers` entry of the config file. */
export const mcpServerCreateBody = mcpServerSchema;
/**
 * PATCH: a JSON Merge Patch (RFC 7396) of the entry; `null` removes a member (`clientSecret: null`
 * clears the secret), a member left out is kept (the secret too). The merged entry is checked by
 * the create body's schema. `If-Match: "<etag>"` makes it conditional.
 */
export const catalogPatchBody = z.record(z.string(), z.unknown());
/** POST /mcp-servers/preview: the server to discover, and the entry's fields that change the outcome. */
export const mcpPreviewBody = z.strictObject({
  url: mcpServerSchema.shape.url,
  clientId: mcpServerSchema.shape.clientId,
  scopes: mcpServerSchema.shape.scopes,
  pkce: mcpServerSchema.shape.pkce,
});
