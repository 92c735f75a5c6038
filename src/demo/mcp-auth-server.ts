import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
// @ts-expect-error oidc-provider publishes no type declarations; the slice used here is typed below.
import ProviderModule, { errors as providerErrors } from 'oidc-provider';
import { type CimdFetch, ClientStore } from './mcp-client-store.js';
import { appendToLog } from './mcp-http.js';
import type { OidcClientMetadata } from './oidc-provider.js';

/** What the MCP test server's authorization server noted about the requests it answered. */
export interface AuthServerLog {
  /** Query parameters of every authorization request (`/authorize`). */
  authorizationRequests: Array<Record<string, string>>;
  /** Every token request, with its outcome (secrets and codes are not kept). */
  tokenRequests: Array<{
    grantType?: string;
    resource?: string;
    scope?: string;
    clientId?: string;
    status: number;
  }>;
  /** The metadata of every client registered through RFC 7591 dynamic registration. */
  registrations: Array<Record<string, unknown>>;
  /** Every Client ID Metadata Document fetched (CIMD). */
  cimdFetches: CimdFetch[];
  /** Messages of errors oidc-provider answered with `server_error` (a broken test setup). */
  serverErrors: string[];
}

export interface AuthServerOptions {
  /** The issuer identifier: an origin, or an origin with a path (`http://127.0.0.1:P/tenant1`). */
  issuer: string;
  /** The MCP endpoint's canonical URI: the one resource indicator (RFC 8707) accepted. */
  resource: string;
  /** `aud` of the access tokens: the resource, or a fixed value when `ignoreResource`. */
  audience: string;
  ignoreResource: boolean;
  /** Scopes of the resource (listed in `scopes_supported`). */
  scopes: string[];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** `always`: every client allowed the refresh_token grant gets one; else only with offline_access. */
  refreshTokens: 'always' | 'offline_access';
  registration: boolean;
  cimd: boolean;
  /** Statically configured (pre-registered) clients. */
  clients: OidcClientMetadata[];
  /** Where authorization-server metadata is served; `[]` for none (2025-03-26 default endpoints). */
  metadataPaths: string[];
  log: AuthServerLog;
}

export interface AuthServer {
  /** Answers a request for the authorization server, or returns false when the path is not its. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The JWKS URI access tokens are verified with. */
  jwksUri: string;
  dropRegistrations(): number;
}

/** The part of the `oidc-provider` Provider instance used here (it ships no types). */
interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: never[]) => void): unknown;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): unknown;
}

interface KoaContext {
  method: string;
  path: string;
  status: number;
  query: Record<string, string | string[] | undefined>;
  oidc?: { params?: Record<string, unknown>; client?: { clientId: string } };
}

const ProviderClass = ProviderModule as new (issuer: string, configuration: object) => Provider;
const InvalidTarget = (providerErrors as { InvalidTarget: new (detail?: string) => Error }).InvalidTarget;

/** The endpoints 2025-03-26 clients assume when there is no metadata (its "default endpoints"). */
const ROUTES = {
  authorization: '/authorize',
  token: '/token',
  registration: '/register',
  jwks: '/jwks',
  revocation: '/revoke',
  userinfo: '/userinfo',
};
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const INTERACTION_TTL = 600;

/**
 * The MCP test server's own authorization server: panva's oidc-provider with PKCE (S256) required,
 * RFC 7591 dynamic registration (when `registration`), RFC 8707 resource indicators issuing
 * RFC 9068 JWT access tokens for the MCP endpoint, rotating refresh tokens, RFC 9207 `iss`,
 * RFC 7009 revocation and its built-in login/consent pages. Mounted at the issuer's path; its
 * metadata is served only at `metadataPaths` (RFC 8414 and OIDC locations alike).
 */
export function createAuthServer(options: AuthServerOptions): AuthServer {
  const issuerUrl = new URL(options.issuer);
  const mountPath = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname.replace(/\/$/, '');
  const store = new ClientStore({
    cimd: options.cimd,
    onCimdFetch: (fetch) => appendToLog(options.log.cimdFetches, fetch),
  });
  const provider = new ProviderClass(options.issuer, buildConfiguration(options, store));
  recordRequests(provider, options.log);
  const callback = provider.callback();
  const metadataPaths = new Set(options.metadataPaths);

  return {
    jwksUri: `${issuerUrl.origin}${mountPath}${ROUTES.jwks}`,
    dropRegistrations: () => store.dropRegistrations(),
    handle(incoming, res) {
      // oidc-provider reads `originalUrl` (as Express sets it) to learn the path it is mounted at.
      const req = incoming as IncomingMessage & { originalUrl?: string };
      const url = new URL(req.url ?? '/', 'http://unused');
      // Metadata is served where the variant says and nowhere else: the provider's own discovery
      // route answers only through one of those paths.
      if (metadataPaths.has(url.pathname)) {
        req.originalUrl = `${mountPath}${DISCOVERY_PATH}${url.search}`;
        req.url = `${DISCOVERY_PATH}${url.search}`;
        callback(req, res);
        return true;
      }
      if (url.pathname.includes('/.well-known/')) return false;
      if (mountPath !== '' && url.pathname !== mountPath && !url.pathname.startsWith(`${mountPath}/`)) {
        return false;
      }
      // Its mount path (for the URLs it prints) is originalUrl minus url.
      req.originalUrl = req.url;
      req.url = (req.url ?? '/').slice(mountPath.length) || '/';
      callback(req, res);
      return true;
    },
  };
}

function buildConfiguration(options: AuthServerOptions, store: ClientStore): object {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const resourceServer = {
    scope: options.scopes.join(' '),
    audience: options.audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: options.accessTokenTtlSeconds,
    jwt: { sign: { alg: 'RS256' } },
  };
  return {
    clients: options.clients,
    adapter: store.adapterFactory(),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clockTolerance: 0,
    responseTypes: ['code'],
    pkce: { required: () => true },
    routes: ROUTES,
    scopes: ['openid', 'offline_access', ...options.scopes],
    claims: { openid: ['sub'] },
    rotateRefreshToken: true,
    issueRefreshToken: async (
      _ctx: unknown,
      client: { grantTypeAllowed(grantType: string): boolean },
      source: { scopes: Set<string> },
    ) =>
      client.grantTypeAllowed('refresh_token') &&
      (options.refreshTokens === 'always' || source.scopes.has('offline_access')),
    // Tokens outlive the sign-in session at this server: the client keeps refreshing without it.
    expiresWithSession: async () => false,
    findAccount: async (_ctx: unknown, accountId: string) => ({
      accountId,
      claims: async () => ({ sub: accountId }),
    }),
    ttl: {
      AccessToken: options.accessTokenTtlSeconds,
      RefreshToken: options.refreshTokenTtlSeconds,
      Grant: options.refreshTokenTtlSeconds,
      Session: options.refreshTokenTtlSeconds,
      Interaction: INTERACTION_TTL,
      IdToken: options.accessTokenTtlSeconds,
    },
    discovery: options.cimd ? { client_id_metadata_document_supported: true } : {},
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: options.registration },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No `resource` parameter (a 2025-03-26 client): the authorization is for the MCP endpoint.
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string | string[]) =>
          options.ignoreResource ? options.audience : (oneOf ?? options.resource),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (!options.ignoreResource && indicator !== options.resource) throw new InvalidTarget();
          return resourceServer;
        },
      },
    },
  };
}

/** Notes authorization, token and registration requests in the log (never codes or secrets). */
function recordRequests(provider: Provider, log: AuthServerLog): void {
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
      appendToLog(
        log.authorizationRequests,
        Object.fromEntries(
          Object.entries(ctx.query).filter(
            (entry): entry is [string, string] => typeof entry[1] === 'string',
          ),
        ),
      );
    }
    await next();
    if (ctx.method === 'POST' && ctx.path === ROUTES.token) {
      const params = ctx.oidc?.params ?? {};
      const text = (name: string) => (typeof params[name] === 'string' ? params[name] : undefined);
      appendToLog(log.tokenRequests, {
        grantType: text('grant_type'),
        resource: text('resource'),
        scope: text('scope'),
        clientId: ctx.oidc?.client?.clientId,
        status: ctx.status,
      });
    }
  });
  provider.on('server_error', (_ctx: unknown, error: unknown) => {
    appendToLog(log.serverErrors, error instanceof Error ? error.message : String(error));
  });
  provider.on(
    'registration_create.success',
    (_ctx: unknown, client: { metadata(): Record<string, unknown> }) => {
      const { client_secret: _secret, registration_access_token: _token, ...metadata } = client.metadata();
      appendToLog(log.registrations, metadata);
    },
  );
}
