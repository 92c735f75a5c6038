import { z } from 'zod';

// A provider template: what an administrator would otherwise look up in a provider's docs. Data
// only; `templateSchema` checks every template when the table is built (templates/index.ts).

/** How the token endpoint answers, when it does not answer as RFC 6749 §5 says. */
export const tokenResponseShapes = ['standard', 'slack', 'github', 'hubspot'] as const;
export type TokenResponseShape = (typeof tokenResponseShapes)[number];

/**
 * Where a connection's own API base URL comes from, for providers whose API host differs per
 * account: a field of the token response (Salesforce `instance_url`, a whole URL whose host must
 * match `hosts`), or the id of the first site an Atlassian-style accessible-resources lookup lists,
 * appended to the integration's `api.baseUrl`.
 */
export const connectionApiBaseSchema = z.discriminatedUnion('from', [
  z.strictObject({
    from: z.literal('token_response'),
    field: z.string().regex(/^[a-z_]{1,64}$/),
    /** Host names the URL may have: exact, or `*.suffix` for any subdomain. */
    hosts: z.array(z.string().regex(/^(?:\*\.)?[a-z0-9.-]+$/)).min(1),
  }),
  z.strictObject({
    from: z.literal('accessible_resources'),
    url: z.url({ protocol: /^https?$/ }),
  }),
]);
export type ConnectionApiBase = z.output<typeof connectionApiBaseSchema>;

const scope = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'one scope token');
const https = z.url({ protocol: /^https$/ });

const endpointsSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('entra'), tenant: z.string().min(1), authority: https }),
  z.strictObject({ type: z.literal('oidc'), issuer: https }),
  z.strictObject({
    type: z.literal('oauth2'),
    authorizationEndpoint: https,
    tokenEndpoint: https,
    revocationEndpoint: https.optional(),
    userinfoEndpoint: https.optional(),
    scopeSeparator: z.enum([' ', ',']).optional(),
  }),
]);

const responsePath = z
  .string()
  .regex(/^[a-z_]{1,64}(?:\.[a-z_]{1,64}){0,4}$/, 'must be a dotted path of field names');

/** Where in the token response the connected account is (providers without ID token or userinfo). */
export const accountFromTokenResponseSchema = z.strictObject({
  id: responsePath,
  name: responsePath.optional(),
  email: responsePath.optional(),
});

/** The provider-config fields a quirk sets (beside endpoints): the same names as in the YAML. */
const quirkSettingsSchema = z.strictObject({
  tokenResponseShape: z.enum(tokenResponseShapes).optional(),
  tokenRequestBody: z.literal('json').optional(),
  scopeParameter: z.enum(['scope', 'user_scope']).optional(),
  connectionApiBase: connectionApiBaseSchema.optional(),
  accountFromTokenResponse: accountFromTokenResponseSchema.optional(),
});

export const templateSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/),
  name: z.string().min(1),
  /** Where the admin registers the app (a console URL), and what to set there. */
  registration: z.strictObject({ console: https, steps: z.array(z.string().min(1)).min(1) }),
  provider: endpointsSchema,
  clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']),
  authorizationParams: z.record(z.string(), z.string()).optional(),
  tokenParams: z.record(z.string(), z.string()).optional(),
  settings: quirkSettingsSchema.default({}),
  /**
   * What the provider forbids in an integration's scopes: `one_resource` (Entra: one API per
   * token), `none` (Notion: no scopes at all; access is granted per page).
   */
  scopeRule: z.enum(['one_resource', 'none']).optional(),
  /** Scopes suggested when an integration names none of its own. */
  defaultScopes: z.array(scope),
  /** The provider's behaviour an admin must know, one readable sentence each. */
  quirks: z.array(z.string().min(10)).min(1),
  integrations: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
        name: z.string().min(1),
        scopes: z.array(scope),
        /** Absent where every connection has its own API host (Salesforce). */
        api: z.strictObject({ baseUrl: https }).optional(),
      }),
    )
    .min(1),
});

export type ProviderTemplateInput = z.input<typeof templateSchema>;
export type ProviderTemplate = z.output<typeof templateSchema>;
