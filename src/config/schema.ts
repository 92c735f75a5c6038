import { createPrivateKey } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { applyTemplate, integrationScopeProblem, TemplateError } from '../oauth/templates/index.js';
import {
  accountFromTokenResponseSchema,
  connectionApiBaseSchema,
  tokenResponseShapes,
} from '../oauth/templates/template.js';
import { boolean, integer } from './fields.js';
import { rateLimitsSchema } from './rate-limits.js';

// The configuration file's schema (contract §3). Every object is strict: a misspelt key is an
// error, not a silently ignored setting. Custom messages name the rule, never the value.

type Ctx = z.core.$RefinementCtx;
/** Run a refinement even when other fields of the same object already failed, so one pass reports all. */
const always = { when: () => true };

// ---------------------------------------------------------------------------------------------
// Building blocks

const slugPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const keyIdPattern = /^[A-Za-z0-9_-]{1,32}$/;
/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const scopeTokenPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const domainPattern = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
const ipv4CidrPattern = /^\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}$/;

const nonEmpty = () => z.string().min(1);

const slug = () =>
  z
    .string()
    .refine(
      (s) => slugPattern.test(s),
      'must be a slug: 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit',
    );

const scopeList = () =>
  z.array(
    z
      .string()
      .refine((s) => scopeTokenPattern.test(s), 'must be one scope token (no spaces, quotes or backslashes)'),
  );

/** Keys nunq-connect sets itself; extra parameters may not override them. */
const reservedAuthorizationParams = [
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
];
const reservedTokenParams = [
  'grant_type',
  'code',
  'code_verifier',
  'redirect_uri',
  'refresh_token',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
];

const extraParams = (reserved: readonly string[]) =>
  z.record(z.string(), z.string()).superRefine((params, ctx) => {
    for (const key of Object.keys(params)) {
      if (reserved.includes(key))
        ctx.addIssue({ code: 'custom', path: [key], message: 'is set by nunq-connect' });
    }
  });

interface UrlRules {
  /** Allow a query component (RFC 6749 §3.1 allows one on endpoints); fragments are never allowed. */
  query?: boolean;
}

/** An absolute http(s) URL without credentials or fragment. */
const httpUrl = (rules: UrlRules = {}) =>
  z.string().superRefine((s, ctx) => {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
      return;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
    } else if (url.username !== '' || url.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not contain a user name or password' });
    } else if (url.hash !== '' || s.includes('#')) {
      ctx.addIssue({ code: 'custom', message: 'must not have a fragment (#...)' });
    } else if (!rules.query && (url.search !== '' || s.includes('?'))) {
      ctx.addIssue({ code: 'custom', message: 'must not have a query (?...)' });
    }
  });

/** A base URL that paths are appended to: no query, trailing slash removed. */
const baseUrl = () => httpUrl().transform(stripTrailingSlash);

function stripTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// server, database, encryption

/**
 * A web origin (`https://platform.example`, `http://127.0.0.1:8080`): scheme, host and port only,
 * as browsers send it in `Origin`; never `*` or `null`. @see RFC 6454 §6.2
 */
const webOrigin = () =>
  z.string().refine((s) => {
    try {
      const url = new URL(s);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === s;
    } catch {
      return false;
    }
  }, 'must be an origin such as https://platform.example (scheme, host and port; no path, no trailing slash, no *)');

const serverSchema = z
  .strictObject({
    /** Origins of the host platform's pages: popup Connect posts to them, the API answers their CORS. */
    embedOrigins: z.array(webOrigin()).default([]),
    port: integer(0, 65535).default(3000),
    host: nonEmpty().default('127.0.0.1'),
    publicUrl: httpUrl().optional(),
    trustProxy: boolean().default(false),
    /** Time to receive a request's headers. */
    headersTimeoutMs: integer(100, 10 * 60_000).default(10_000),
    /** Time to receive a whole request, body included; responses (SSE, streams) are not bounded. */
    requestTimeoutMs: integer(100, 60 * 60_000).default(60_000),
    /** How long an idle keep-alive connection stays open; above a load balancer's idle timeout. */
    keepAliveTimeoutMs: integer(100, 10 * 60_000).default(72_000),
    /** The largest request body the API reads (the proxy streams its own). */
    bodyLimitBytes: integer(1024, 1024 ** 3).default(1024 * 1024),
  })
  .superRefine((server, ctx) => {
    const headers = server.headersTimeoutMs ?? 10_000;
    if (typeof server.requestTimeoutMs === 'number' && server.requestTimeoutMs < headers) {
      ctx.addIssue({
        code: 'custom',
        path: ['requestTimeoutMs'],
        message: 'must be at least server.headersTimeoutMs',
      });
    }
  })
  .transform(({ publicUrl, ...server }) => ({
    ...server,
    publicUrl: stripTrailingSlash(publicUrl ?? `http://localhost:${server.port}`),
  }));

const databaseSchema = z.strictObject({
  url: z
    .string()
    .refine(
      (s) => /^sqlite:.+/.test(s) || /^postgres(?:ql)?:\/\/./.test(s),
      'must start with sqlite:, postgres:// or postgresql://',
    )
    .default('sqlite:./.nunq/nunq.db'),
});

/** Standard or URL-safe base64 (padding optional) that decodes to exactly 32 bytes. */
export function isKeyMaterial(s: string): boolean {
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(s) && !/^[A-Za-z0-9_-]{43}=?$/.test(s)) return false;
  return Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64').length === 32;
}

const encryptionSchema = z
  .strictObject({
    activeKey: z.string(),
    keys: z
      .array(
        z.strictObject({
          id: z
            .string()
            .refine((s) => keyIdPattern.test(s), 'must be 1-32 characters of A-Z, a-z, 0-9, _ and -'),
          key: z.string().refine(isKeyMaterial, 'must be base64 of exactly 32 bytes'),
        }),
      )
      .min(1),
  })
  .superRefine(checkKeyIds, always);

function checkKeyIds(encryption: unknown, ctx: Ctx): void {
  if (!isRecord(encryption) || !Array.isArray(encryption.keys)) return;
  const firstIndex = new Map<string, number>();
  encryption.keys.forEach((entry: unknown, i) => {
    if (!isRecord(entry) || typeof entry.id !== 'string') return;
    const first = firstIndex.get(entry.id);
    if (first === undefined) firstIndex.set(entry.id, i);
    else
      ctx.addIssue({
        code: 'custom',
        path: ['keys', i, 'id'],
        message: `duplicate key id (also encryption.keys[${first}])`,
      });
  });
  if (typeof encryption.activeKey === 'string' && !firstIndex.has(encryption.activeKey)) {
    ctx.addIssue({
      code: 'custom',
      path: ['activeKey'],
      message: 'must be the id of one of encryption.keys',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// auth, outbound, webhooks

const jwtSchema = z
  .strictObject({
    secret: z
      .string()
      .refine((s) => s.length >= 32, 'must be at least 32 characters (HS256)')
      .optional(),
    jwksUrl: httpUrl({ query: true }).optional(),
    issuer: nonEmpty().optional(),
    audience: nonEmpty().optional(),
  })
  .superRefine((jwt, ctx) => {
    if (!isRecord(jwt)) return;
    if (jwt.secret === undefined && jwt.jwksUrl === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs either secret (HS256) or jwksUrl' });
    } else if (jwt.secret !== undefined && jwt.jwksUrl !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'cannot be combined with secret' });
    }
  }, always)
  .transform(({ secret, jwksUrl, ...checks }) =>
    secret !== undefined ? { secret, ...checks } : { jwksUrl: jwksUrl as string, ...checks },
  );

const authSchema = z
  .strictObject({
    mode: z.enum(['jwt', 'dev']).default('jwt'),
    jwt: jwtSchema.optional(),
    admins: z.array(nonEmpty()).default([]),
    /** The JWT claim that lists a user's groups (an array of strings, or one string). */
    groupsClaim: nonEmpty().default('groups'),
    sessionTtlSeconds: integer(1).default(12 * 60 * 60),
  })
  .superRefine((auth, ctx) => {
    if (isRecord(auth) && (auth.mode ?? 'jwt') === 'jwt' && auth.jwt === undefined) {
      ctx.addIssue({ code: 'custom', path: ['jwt'], message: 'required when auth.mode is jwt' });
    }
  }, always);

/** A CIDR range; IPv4 only in dotted-quad form (ipaddr.js would also take `0x7f.1/8`). */
export function isCidr(s: string): boolean {
  if (!s.includes(':') && !ipv4CidrPattern.test(s)) return false;
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}

const outboundSchema = z.strictObject({
  allow: z
    .array(z.string().refine(isCidr, 'must be a CIDR range such as 127.0.0.1/32 or ::1/128'))
    .default([]),
  timeoutMs: integer(1).default(10_000),
});

export const webhookEventTypes = [
  'connection.created',
  'connection.reconnected',
  'connection.needs_reauth',
  'connection.deleted',
] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

export const webhookSchema = z.strictObject({
  url: httpUrl({ query: true }),
  secret: z.string().min(16),
  /** Event types to send; all when omitted. */
  events: z.array(z.enum(webhookEventTypes)).min(1).optional(),
});

// ---------------------------------------------------------------------------------------------
// metrics

/**
 * `GET /metrics` access: with `token`, a scraper sends `Authorization: Bearer <token>`; without
 * it only administrators (platform JWT or session) may read it.
 */
const metricsSchema = z.strictObject({
  token: z.string().min(16, 'must be at least 16 characters').optional(),
});

// ---------------------------------------------------------------------------------------------
// retention

/** How long finished rows are kept; each field left out keeps its default (docs/operations.md). */
const retentionSchema = z.strictObject({
  eventsHours: integer(1).optional(),
  deliveriesDays: integer(1).optional(),
  notificationsDays: integer(1).optional(),
  revocationsDays: integer(1).optional(),
});

// ---------------------------------------------------------------------------------------------
// providers

export const clientAuthMethods = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'none',
] as const;
export type ClientAuthMethod = (typeof clientAuthMethods)[number];

/** A private JWK (RFC 7517): the fields an RSA, EC or OKP key may carry; `d` makes it private. */
const privateJwkSchema = z.strictObject({
  kty: z.enum(['RSA', 'EC', 'OKP']),
  d: nonEmpty(),
  kid: z.string().optional(),
  alg: z.string().optional(),
  use: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
  n: z.string().optional(),
  e: z.string().optional(),
  p: z.string().optional(),
  q: z.string().optional(),
  dp: z.string().optional(),
  dq: z.string().optional(),
  qi: z.string().optional(),
  ext: z.boolean().optional(),
});
export type PrivateJwk = z.output<typeof privateJwkSchema>;

/** `private_key_jwt` signing key: a PEM private key or a private JWK that node:crypto can load. */
const privateKeySchema = z.union([z.string(), privateJwkSchema]).refine((key) => {
  try {
    const loaded = typeof key === 'string' ? createPrivateKey(key) : createPrivateKey({ key, format: 'jwk' });
    return loaded.asymmetricKeyType !== undefined;
  } catch {
    return false;
  }
}, 'must be a PEM private key or a private JWK (RSA, EC or OKP)');

const providerCommon = {
  id: slug(),
  clientId: nonEmpty(),
  clientSecret: nonEmpty().optional(),
  clientAuthMethod: z.enum(clientAuthMethods).optional(),
  privateKey: privateKeySchema.optional(),
  privateKeyId: nonEmpty().optional(),
  authorizationParams: extraParams(reservedAuthorizationParams).optional(),
  tokenParams: extraParams(reservedTokenParams).optional(),
  /** How often an idle connection is refreshed, to keep sliding refresh-token windows open. */
  idleRefreshIntervalSeconds: integer(1).optional(),
  /** The template the entry was made from (its values are merged in before validation). */
  template: z.string().optional(),
  // Quirks a template sets (docs/providers/templates.md); rarely written by hand.
  /** How the token endpoint answers when it does not follow RFC 6749 §5 (Slack, GitHub, HubSpot). */
  tokenResponseShape: z.enum(tokenResponseShapes).optional(),
  /** Send token requests as a JSON body (Notion). */
  tokenRequestBody: z.literal('json').optional(),
  /** The authorization parameter for the scopes (Slack user scopes: `user_scope`). */
  scopeParameter: z.enum(['scope', 'user_scope']).optional(),
  /** Where each connection's own API base URL comes from (Salesforce, Atlassian). */
  connectionApiBase: connectionApiBaseSchema.optional(),
  /** Where in the token response the connected account is (Notion, Dropbox, Slack). */
  accountFromTokenResponse: accountFromTokenResponseSchema.optional(),
};

/** The client-authentication fields must agree with the method (RFC 6749 §2.3, RFC 7523 §2.2). */
function checkClientAuth(provider: unknown, ctx: Ctx): void {
  if (!isRecord(provider)) return;
  const method = provider.clientAuthMethod;
  if (
    (method === 'client_secret_basic' || method === 'client_secret_post') &&
    provider.clientSecret === undefined
  ) {
    ctx.addIssue({
      code: 'custom',
      path: ['clientSecret'],
      message: `required when clientAuthMethod is ${method}`,
    });
  }
  if (method === 'private_key_jwt' && provider.privateKey === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['privateKey'],
      message: 'required when clientAuthMethod is private_key_jwt',
    });
  }
}

const entraTenantRule = 'must be common, organizations, consumers, a tenant id (GUID) or a domain name';

const entraProviderSchema = z
  .strictObject({
    type: z.literal('entra'),
    ...providerCommon,
    tenant: z
      .string()
      .refine(
        (s) =>
          ['common', 'organizations', 'consumers'].includes(s) ||
          guidPattern.test(s) ||
          domainPattern.test(s),
        entraTenantRule,
      )
      .default('organizations'),
    authority: baseUrl().default('https://login.microsoftonline.com'),
  })
  .superRefine(checkClientAuth, always)
  .superRefine((provider, ctx) => {
    // Entra finds a certificate by the x5t header alone: an assertion without it is refused.
    const method =
      provider.clientAuthMethod ?? (provider.privateKey === undefined ? undefined : 'private_key_jwt');
    if (method === 'private_key_jwt' && provider.privateKeyId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['privateKeyId'],
        message:
          "required for Entra certificate credentials: the certificate's SHA-1 thumbprint, base64url (sent as x5t)",
      });
    }
  }, always);

const oidcProviderSchema = z
  .strictObject({
    type: z.literal('oidc'),
    ...providerCommon,
    issuer: httpUrl(),
    scopesSupported: scopeList().optional(),
  })
  .superRefine(checkClientAuth, always);

const oauth2ProviderSchema = z
  .strictObject({
    type: z.literal('oauth2'),
    ...providerCommon,
    authorizationEndpoint: httpUrl({ query: true }),
    tokenEndpoint: httpUrl({ query: true }),
    revocationEndpoint: httpUrl({ query: true }).optional(),
    userinfoEndpoint: httpUrl({ query: true }).optional(),
    issuer: httpUrl().optional(),
    scopeSeparator: z.enum([' ', ',']).default(' '),
  })
  .superRefine(checkClientAuth, always);

/**
 * Fills in `clientAuthMethod` when omitted: `private_key_jwt` with a private key, else
 * `client_secret_basic` with a secret, else `none` (a public client, relying on PKCE).
 */
function withClientAuthMethod<
  T extends {
    clientSecret?: string | undefined;
    privateKey?: unknown;
    clientAuthMethod?: ClientAuthMethod | undefined;
  },
>(provider: T): T & { clientAuthMethod: ClientAuthMethod } {
  const fallback: ClientAuthMethod =
    provider.privateKey !== undefined
      ? 'private_key_jwt'
      : provider.clientSecret !== undefined
        ? 'client_secret_basic'
        : 'none';
  return { ...provider, clientAuthMethod: provider.clientAuthMethod ?? fallback };
}

/**
 * An entry with `template: <id>` gets the template's fields, its own fields winning
 * (oauth/templates/apply.ts); an unknown template or a clashing `type` is reported on that field.
 */
function expandTemplate(value: unknown, ctx: Ctx): unknown {
  if (!isRecord(value) || value.template === undefined) return value;
  if (typeof value.template !== 'string') {
    ctx.addIssue({
      code: 'custom',
      path: ['template'],
      message: 'must be a template id',
      input: value.template,
    });
    return value;
  }
  try {
    return applyTemplate(value.template, value);
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    ctx.addIssue({ code: 'custom', path: [error.field], message: error.message, input: value[error.field] });
    return value;
  }
}

/** One provider entry, a template applied first; the admin API validates its input with the same schema. */
export const providerSchema = z.preprocess(
  expandTemplate,
  z
    .discriminatedUnion('type', [entraProviderSchema, oidcProviderSchema, oauth2ProviderSchema])
    .transform(withClientAuthMethod),
);

// ---------------------------------------------------------------------------------------------
// integrations and MCP servers

/** An integration id: a slug without `__`, which separates it from a tool name on `/mcp`. */
const integrationId = () =>
  slug().refine((s) => !s.includes('__'), 'must not contain "__" (it separates ids from tool names on /mcp)');

/** Users who may see and connect an integration: any of these groups (absent: everyone). */
const groupList = () => z.array(nonEmpty().max(200)).min(1).max(100);

/** One `integrations` entry; the admin API validates its request bodies with this same schema. */
export const integrationSchema = z.strictObject({
  id: integrationId(),
  name: nonEmpty(),
  description: z.string().optional(),
  provider: nonEmpty(),
  scopes: scopeList().default([]),
  /** Where the proxy may send this connection's access token. */
  api: z.strictObject({ baseUrl: baseUrl() }).optional(),
  enabled: boolean().default(true),
  authorizationParams: extraParams(reservedAuthorizationParams).optional(),
  groups: groupList().optional(),
});

/** Client authentication at an MCP server's token endpoint (private_key_jwt is for providers). */
const mcpClientAuthMethods = ['client_secret_basic', 'client_secret_post', 'none'] as const;

/** One `mcpServers` entry; the admin API validates its request bodies with this same schema. */
export const mcpServerSchema = z
  .strictObject({
    id: integrationId(),
    name: nonEmpty(),
    description: z.string().optional(),
    url: httpUrl({ query: true }),
    scopes: scopeList().optional(),
    clientId: nonEmpty().optional(),
    clientSecret: nonEmpty().optional(),
    clientAuthMethod: z.enum(mcpClientAuthMethods).optional(),
    /** For authorization servers that support S256 without listing it in their metadata. */
    pkce: z.literal('assume-s256').optional(),
    /** For authorization servers that refuse RFC 8707 `resource` (Entra-protected servers). */
    resource: z.literal('omit').optional(),
    enabled: boolean().default(true),
    groups: groupList().optional(),
    // A plain refine, not z.custom: z.custom's issue aborts the parse, which would skip the
    // cross-field checks and hide other problems.
    api: z
      .unknown()
      .refine(
        (v): v is undefined => v === undefined,
        'not allowed on an MCP server: the gateway talks to its url',
      )
      .optional(),
  })
  .superRefine((server, ctx) => {
    if (!isRecord(server)) return;
    if (server.clientSecret !== undefined && server.clientId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'requires clientId' });
    }
    if (server.clientAuthMethod !== undefined && server.clientId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientAuthMethod'], message: 'requires clientId' });
    }
    const secretMethod =
      server.clientAuthMethod === 'client_secret_basic' || server.clientAuthMethod === 'client_secret_post';
    if (secretMethod && server.clientSecret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clientSecret'],
        message: `required when clientAuthMethod is ${server.clientAuthMethod}`,
      });
    }
  }, always);

/** Settings shared by all MCP servers. */
const mcpSchema = z.strictObject({
  /** Where our Client ID Metadata Document is hosted, when not at {publicUrl}/oauth/client-metadata.json. */
  clientMetadataUrl: httpUrl()
    .refine((s) => s.startsWith('https://'), 'must be an https URL (it is the client_id)')
    .optional(),
});

// ---------------------------------------------------------------------------------------------
// the whole file

/** Checks that span entries: unique ids and webhook URLs, integrations naming configured providers. */
function checkReferences(config: unknown, ctx: Ctx): void {
  if (!isRecord(config)) return;
  const providers = Array.isArray(config.providers) ? config.providers : undefined;
  const providerIds = new Map<string, number>();
  const templateOf = new Map<string, string>();
  providers?.forEach((provider: unknown, i) => {
    if (!isRecord(provider) || typeof provider.id !== 'string') return;
    if (typeof provider.template === 'string') templateOf.set(provider.id, provider.template);
    const first = providerIds.get(provider.id);
    if (first === undefined) providerIds.set(provider.id, i);
    else
      ctx.addIssue({
        code: 'custom',
        path: ['providers', i, 'id'],
        message: `duplicate provider id (also providers[${first}])`,
      });
  });

  // Webhook endpoints are keyed by their URL, so one URL may appear only once.
  const webhookUrls = new Map<string, number>();
  if (Array.isArray(config.webhooks)) {
    config.webhooks.forEach((hook: unknown, i) => {
      if (!isRecord(hook) || typeof hook.url !== 'string') return;
      const first = webhookUrls.get(hook.url);
      if (first === undefined) webhookUrls.set(hook.url, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['webhooks', i, 'url'],
          message: `duplicate url (also webhooks[${first}])`,
        });
    });
  }

  // An MCP server is an integration too: integration and MCP server ids share one namespace.
  const integrationIds = new Map<string, string>();
  for (const section of ['integrations', 'mcpServers'] as const) {
    const entries = config[section];
    if (!Array.isArray(entries)) continue;
    entries.forEach((entry: unknown, i) => {
      if (!isRecord(entry)) return;
      if (typeof entry.id === 'string') {
        const first = integrationIds.get(entry.id);
        if (first === undefined) integrationIds.set(entry.id, `${section}[${i}]`);
        else
          ctx.addIssue({
            code: 'custom',
            path: [section, i, 'id'],
            message: `duplicate integration id (also ${first})`,
          });
      }
      if (section === 'integrations' && typeof entry.provider === 'string' && Array.isArray(entry.scopes)) {
        const problem = integrationScopeProblem(templateOf.get(entry.provider), entry.scopes.map(String));
        if (problem !== undefined)
          ctx.addIssue({ code: 'custom', path: [section, i, 'scopes'], message: problem });
      }
      if (section === 'integrations' && providers && typeof entry.provider === 'string') {
        if (!providerIds.has(entry.provider)) {
          const known = [...providerIds.keys()].join(', ');
          ctx.addIssue({
            code: 'custom',
            path: [section, i, 'provider'],
            message: `must be the id of a configured provider (${known === '' ? 'none configured' : `configured: ${known}`})`,
          });
        }
      }
    });
  }
}

export const configSchema = z
  .strictObject({
    server: serverSchema.prefault({}),
    database: databaseSchema.prefault({}),
    encryption: encryptionSchema,
    auth: authSchema.prefault({}),
    outbound: outboundSchema.prefault({}),
    webhooks: z.array(webhookSchema).default([]),
    providers: z.array(providerSchema).default([]),
    integrations: z.array(integrationSchema).default([]),
    mcpServers: z.array(mcpServerSchema).default([]),
    mcp: mcpSchema.prefault({}),
    retention: retentionSchema.optional(),
    metrics: metricsSchema.prefault({}),
    rateLimits: rateLimitsSchema.prefault({}),
  })
  .superRefine(checkReferences, always);

export type Config = z.output<typeof configSchema>;
export type ServerConfig = Config['server'];
export type DatabaseConfig = Config['database'];
export type EncryptionConfig = Config['encryption'];
export type AuthConfig = Config['auth'];
export type JwtConfig = NonNullable<AuthConfig['jwt']>;
export type OutboundConfig = Config['outbound'];
export type WebhookConfig = Config['webhooks'][number];
export type ProviderConfig = Config['providers'][number];
export type EntraProviderConfig = Extract<ProviderConfig, { type: 'entra' }>;
export type OidcProviderConfig = Extract<ProviderConfig, { type: 'oidc' }>;
export type OAuth2ProviderConfig = Extract<ProviderConfig, { type: 'oauth2' }>;
export type IntegrationConfig = Config['integrations'][number];
export type McpServerConfig = Config['mcpServers'][number];
export type McpConfig = Config['mcp'];
