import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error oidc-provider publishes no type declarations; the slice used here is typed below.
import ProviderModule, { errors as providerErrors } from 'oidc-provider';

/** Client metadata as oidc-provider takes it (RFC 7591 names). */
export interface OidcClientMetadata {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
  scope?: string;
  [key: string]: unknown;
}

export interface DemoAccount {
  name: string;
  email: string;
}

export interface StartOidcProviderOptions {
  clients: OidcClientMetadata[];
  /** Listening port on 127.0.0.1; 0 (the default) picks an ephemeral one. */
  port?: number;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  rotateRefreshToken?: boolean;
  /** An API (RFC 8707 resource indicator) whose access tokens are JWTs the API verifies locally. */
  resource?: { url: string; scopes: string[] };
  /** Known accounts by login; any other login is accepted with name/email derived from it. */
  accounts?: Record<string, DemoAccount>;
  /** Called with errors oidc-provider turned into `server_error` responses. */
  onServerError?: (error: unknown) => void;
}

/** The part of the `oidc-provider` Provider instance this module relies on (it ships no types). */
export interface OidcProvider {
  readonly issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: never[]) => void): unknown;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): unknown;
  readonly Grant: { find(id: string): Promise<{ destroy(): Promise<void> } | undefined> };
  readonly AccessToken: GrantBoundModel;
  readonly RefreshToken: GrantBoundModel;
  readonly AuthorizationCode: GrantBoundModel;
}
/** Alias matching the name oidc-provider itself uses. */
export type Provider = OidcProvider;

interface GrantBoundModel {
  revokeByGrantId(grantId: string): Promise<void>;
}

/** The slice of a Koa context the authorization request rewrite below touches. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
}

/** The slice of oidc-provider's Koa context read by the event listeners below. */
interface ProviderContext {
  oidc?: { route?: string; params?: { grant_type?: unknown } };
}

export interface OidcProviderCounters {
  /** Token endpoint requests (successful or not) by `grant_type`. */
  tokenRequests: Record<string, number>;
  /** Refresh tokens presented again after rotation; each one revoked its whole grant. */
  refreshReuseDetected: number;
}

export interface RunningOidcProvider {
  issuer: string;
  provider: OidcProvider;
  counters: OidcProviderCounters;
  /** Revokes every grant (or one account's) with all its tokens; returns how many grants went. */
  revokeGrants(accountId?: string): Promise<number>;
  close(): Promise<void>;
}

const ProviderClass = ProviderModule as new (issuer: string, configuration: object) => OidcProvider;
const InvalidTarget = (providerErrors as { InvalidTarget: new (detail?: string) => Error }).InvalidTarget;

const DEFAULT_ACCESS_TOKEN_TTL = 3600;
const DEFAULT_REFRESH_TOKEN_TTL = 14 * 24 * 3600;
const INTERACTION_TTL = 600;
const ID_TOKEN_TTL = 3600;
const AUTHORIZATION_PATH = '/auth';

/**
 * Starts panva's oidc-provider on 127.0.0.1 with its built-in login/consent pages: a real OpenID
 * Connect provider for demo mode and end-to-end tests (authorization code + PKCE, refresh token
 * rotation with reuse detection, RFC 9207 `iss`, RFC 8707 resource indicators, RFC 7009 revocation).
 *
 * `offline_access`: oidc-provider drops it from an authorization request unless `prompt` contains
 * `consent` (OIDC Core §11), and most clients send no prompt at all. So an authorization request
 * asking for `offline_access` without `prompt=none` gets `consent` added to its prompt: the consent
 * page is then shown on every such authorization (as Google does), its form adds the missing
 * `offline_access` to the Grant, and `issueRefreshToken` sees it. Pushed authorization requests
 * (PAR) are not rewritten: send `prompt=consent` there.
 */
export async function startOidcProvider(opts: StartOidcProviderOptions): Promise<RunningOidcProvider> {
  const accessTokenTtl = opts.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL;
  const refreshTokenTtl = opts.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL;
  const counters: OidcProviderCounters = { tokenRequests: {}, refreshReuseDetected: 0 };
  /** Live grants: id → account id, fed by the Grant model's save/destroy events. */
  const grants = new Map<string, string>();

  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handle) handle(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  let provider: OidcProvider;
  try {
    provider = new ProviderClass(issuer, buildConfiguration(opts, accessTokenTtl, refreshTokenTtl));
  } catch (error) {
    await closeServer(server); // e.g. invalid client metadata
    throw error;
  }

  const countTokenRequest = (ctx: ProviderContext) => {
    const grantType = ctx.oidc?.params?.grant_type;
    const key = typeof grantType === 'string' ? grantType : 'unknown';
    counters.tokenRequests[key] = (counters.tokenRequests[key] ?? 0) + 1;
  };
  provider.on('grant.success', countTokenRequest);
  provider.on('grant.error', countTokenRequest);
  // A refresh_token grant revokes its Grant only when the presented token was already consumed
  // (rotated): oidc-provider then destroys the whole grant and answers invalid_grant.
  provider.on('grant.revoked', (ctx: ProviderContext, grantId: string) => {
    grants.delete(grantId);
    if (ctx.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'refresh_token') {
      counters.refreshReuseDetected += 1;
    }
  });
  provider.on('grant.saved', (grant: { jti: string; accountId: string }) => {
    grants.set(grant.jti, grant.accountId);
  });
  provider.on('grant.destroyed', (grant: { jti: string }) => {
    grants.delete(grant.jti);
  });
  provider.on('server_error', (_ctx: unknown, error: unknown) => opts.onServerError?.(error));

  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === AUTHORIZATION_PATH)
      ctx.query = withConsentForOfflineAccess(ctx.query);
    await next();
  });
  handle = provider.callback();
  // Koa composes its middleware when callback() is called: middleware added later (tests inject
  // faults this way) must recompose the handler.
  const use = provider.use.bind(provider);
  provider.use = (middleware) => {
    const result = use(middleware);
    handle = provider.callback();
    return result;
  };

  return {
    issuer,
    provider,
    counters,
    async revokeGrants(accountId) {
      let revoked = 0;
      for (const [grantId, owner] of [...grants]) {
        if (accountId !== undefined && owner !== accountId) continue;
        await Promise.all(
          [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode].map((model) =>
            model.revokeByGrantId(grantId),
          ),
        );
        const grant = await provider.Grant.find(grantId);
        grants.delete(grantId);
        if (grant) {
          await grant.destroy();
          revoked += 1;
        }
      }
      return revoked;
    },
    close: () => closeServer(server),
  };
}

function buildConfiguration(
  opts: StartOidcProviderOptions,
  accessTokenTtl: number,
  refreshTokenTtl: number,
): object {
  const { resource } = opts;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

  return {
    clients: opts.clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clockTolerance: 0,
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
    // Access tokens go to the API (below), which leaves userinfo unusable with them: put the
    // scope-derived claims into the ID token instead.
    conformIdTokenClaims: false,
    rotateRefreshToken: opts.rotateRefreshToken ?? true,
    issueRefreshToken: async (
      _ctx: unknown,
      client: { grantTypeAllowed(grantType: string): boolean },
      source: { scopes: Set<string> },
    ) => client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access'),
    findAccount: async (_ctx: unknown, accountId: string) => {
      const account = opts.accounts?.[accountId] ?? deriveAccount(accountId);
      return {
        accountId,
        claims: async () => ({ sub: accountId, name: account.name, email: account.email }),
      };
    },
    ttl: {
      AccessToken: accessTokenTtl,
      RefreshToken: refreshTokenTtl,
      Grant: refreshTokenTtl,
      Session: refreshTokenTtl,
      Interaction: INTERACTION_TTL,
      IdToken: ID_TOKEN_TTL,
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: resource
        ? {
            enabled: true,
            // No `resource` parameter: the authorization (and so its code and refresh tokens) is for the API.
            defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string | string[]) =>
              oneOf ?? resource.url,
            // Code and refresh grants keep issuing for the granted resource even when openid was asked for.
            useGrantedResource: async () => true,
            getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
              if (indicator !== resource.url) throw new InvalidTarget();
              return {
                scope: resource.scopes.join(' '),
                audience: resource.url,
                accessTokenFormat: 'jwt',
                accessTokenTTL: accessTokenTtl,
                jwt: { sign: { alg: 'RS256' } },
              };
            },
          }
        : { enabled: false },
    },
  };
}

/** Adds `consent` to the prompt of a query asking for `offline_access`, unless it says `prompt=none`. */
function withConsentForOfflineAccess(query: KoaContext['query']): KoaContext['query'] {
  const { scope, prompt = '' } = query;
  if (typeof scope !== 'string' || typeof prompt !== 'string') return query; // duplicates: left to oidc-provider
  const prompts = prompt.split(' ').filter(Boolean);
  if (
    !scope.split(' ').includes('offline_access') ||
    prompts.includes('none') ||
    prompts.includes('consent')
  ) {
    return query;
  }
  return { ...query, prompt: [...prompts, 'consent'].join(' ') };
}

function deriveAccount(login: string): DemoAccount {
  const local = login.split('@')[0] ?? login;
  const name = local
    .split(/[._-]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join(' ');
  return { name: name || login, email: login.includes('@') ? login : `${login}@example.com` };
}

function closeServer(server: ReturnType<typeof createServer>): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
