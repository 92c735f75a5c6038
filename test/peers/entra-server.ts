/**
 * A local server that behaves like Microsoft Entra ID v2.0 where a client can tell: tenant-shaped
 * routes and issuers (`{tenantid}` in multi-tenant discovery), no RFC 9207 `iss` in the authorization
 * response, scopes that name resources (one resource per token request: AADSTS28000), no `resource`
 * parameter (AADSTS901002), refresh tokens only with offline_access, rotated on every use, client
 * secrets or certificate assertions (`x5t`, audience = the token endpoint), and error bodies shaped
 * like Entra's (`AADSTS…` descriptions, `error_codes`, trace and correlation ids).
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';

export interface EntraClient {
  clientId: string;
  /** Absent, with `certificate`, for a public client (then only PKCE protects the code). */
  clientSecret?: string;
  /**
   * A certificate credential: client assertions (RFC 7523 §2.2) signed by its key, naming it by
   * `x5t` (its SHA-1 thumbprint, base64url) and never by `kid`.
   */
  certificate?: { publicKey: KeyObject; thumbprint: string };
  redirectUris: string[];
}

export interface StartEntraServerOptions {
  clients: EntraClient[];
  /** The directory's tenant GUID (default: random per start). */
  tenantId?: string;
  /** Domain for generated user principal names (default `contoso.onmicrosoft.com`). */
  tenantDomain?: string;
  accessTokenTtlSeconds?: number;
  /** Refresh tokens unused for this long answer AADSTS700082 (default 90 days). */
  refreshTokenInactivitySeconds?: number;
  port?: number;
  clock?: { now(): number };
}

/** An injected token endpoint answer, e.g. `{ status: 400, error: 'invalid_grant', description: 'AADSTS50076: …' }`. */
export interface EntraFailure {
  status: number;
  error: string;
  description: string;
  /** How many token requests answer this way (default 1). */
  times?: number;
  /** Default: the number after `AADSTS` in `description`. */
  errorCodes?: number[];
  /** Extra body fields, e.g. `{ suberror: 'basic_action', claims: '…' }`. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface RunningEntraServer {
  /** `http://127.0.0.1:PORT`, the stand-in for `https://login.microsoftonline.com`. */
  url: string;
  tenantId: string;
  /** The tenant's issuer: `{url}/{tenantId}/v2.0`. */
  issuer: string;
  /** `{url}/{tenant}/v2.0` for `tenant` = the GUID (default), `organizations` or `common`. */
  authority(tenant?: string): string;
  /** Base URL of a fake Microsoft Graph (`GET /v1.0/me`) accepting this server's Graph tokens. */
  graphUrl: string;
  counters: { tokenRequests: Record<string, number>; signIns: number };
  failNext(failure: EntraFailure): void;
  /** Makes every refresh token issued so far answer invalid_grant AADSTS70008. */
  revokeAll(): void;
  /** Overrides claims of the next ID token issued (e.g. a wrong `aud`, `nonce` or `tid`), for negative tests. */
  tamperNextIdToken(claims: Record<string, unknown>): void;
  close(): Promise<void>;
}

interface User {
  oid: string;
  name: string;
  preferredUsername: string;
}
interface PendingSignIn {
  client: EntraClient;
  redirectUri: string;
  scopes: string[];
  state?: string;
  nonce?: string;
  codeChallenge?: string;
  expiresAt: number;
}
interface AuthorizationCode {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  user: User;
  nonce?: string;
  codeChallenge?: string;
  expiresAt: number;
  redeemed: boolean;
}
interface RefreshGrant {
  clientId: string;
  scopes: string[];
  user: User;
  lastUsedAt: number;
  state: 'active' | 'rotated' | 'revoked';
}
interface AccessGrant {
  user: User;
  resource: string;
  expiresAt: number;
}

/** The Entra answers this server gives: AADSTS code → "HTTP-status OAuth-error message" (`{n}`: argument n). */
const AADSTS = {
  28000:
    '400 invalid_scope Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {0} is not valid.',
  50011:
    "400 invalid_request The redirect URI '{0}' specified in the request does not match the redirect URIs configured for the application '{1}'.",
  50058: '400 login_required A silent sign-in request was sent but no user is signed in.',
  54005:
    '400 invalid_grant OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65001:
    "400 invalid_grant The user or administrator has not consented to use the application with ID '{0}'. Send an interactive authorization request for this user and resource.",
  70000:
    "400 invalid_grant The provided value for the input parameter 'refresh_token' or 'assertion' is not valid: the refresh token was already redeemed.",
  70003: "400 unsupported_grant_type The app requested an unsupported grant type '{0}'.",
  70008:
    '400 invalid_grant The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  90002:
    "400 invalid_tenant Tenant '{0}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
  90014: '400 invalid_request The sign-in request is missing or has expired.',
  90033: '500 server_error A transient error has occurred. Please try again.',
  500112:
    '400 invalid_grant The reply address does not match the reply address provided when requesting Authorization code.',
  501481:
    '400 invalid_grant The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  501491: '400 invalid_request The code_challenge_method must be S256.',
  700016: "400 unauthorized_client Application with identifier '{0}' was not found in the directory '{1}'.",
  700027: '401 invalid_client Client assertion failed validation. [Reason - {0}]',
  700054: "400 unsupported_response_type response_type '{0}' is not enabled for the application.",
  700082: '400 invalid_grant The refresh token has expired due to inactivity.',
  900144: "400 invalid_request The request body must contain the following parameter: '{0}'.",
  901002: "400 invalid_request The 'resource' request parameter is not supported.",
  7000215:
    "401 invalid_client Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{0}'.",
  7000218:
    "401 invalid_client The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  9002313: '400 invalid_grant Invalid request. Request is malformed or invalid.',
} as const;

class EntraError extends Error {
  readonly status: number;
  readonly error: string;
  constructor(
    readonly code: keyof typeof AADSTS,
    args: string[] = [],
    readonly extra: Record<string, unknown> = {},
  ) {
    const [, status = '500', error = 'server_error', template = ''] =
      /^(\d{3}) (\S+) (.*)$/.exec(AADSTS[code]) ?? [];
    super(`AADSTS${code}: ${template.replace(/\{(\d)\}/g, (_, n: string) => args[Number(n)] ?? '')}`);
    this.status = Number(status);
    this.error = error;
  }
}

const GRAPH = 'https://graph.microsoft.com';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const MULTI_TENANT = new Set(['organizations', 'common']);
const CODE_TTL_MS = 10 * 60_000;
const ID_TOKEN_TTL_S = 3600;

/** Starts the Entra-shaped authorization server on 127.0.0.1. */
export async function startEntraServer(opts: StartEntraServerOptions): Promise<RunningEntraServer> {
  const tenantId = opts.tenantId ?? randomUUID();
  const tenantDomain = opts.tenantDomain ?? 'contoso.onmicrosoft.com';
  const clock = opts.clock ?? Date;
  const accessTtl = opts.accessTokenTtlSeconds ?? 3600;
  const inactivityMs = (opts.refreshTokenInactivitySeconds ?? 90 * 86400) * 1000;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(20).toString('base64url');
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', x5t: kid };

  const counters = { tokenRequests: {} as Record<string, number>, signIns: 0 };
  const failures: EntraFailure[] = [];
  const pending = new Map<string, PendingSignIn>();
  const codes = new Map<string, AuthorizationCode>();
  const refreshTokens = new Map<string, RefreshGrant>();
  const accessTokens = new Map<string, AccessGrant>();

  let base = '';
  const issuerFor = (tenant: string) => `${base}/${tenant}/v2.0`;
  const clientFor = (id: string | null | undefined) => opts.clients.find((c) => c.clientId === id);
  const knownTenant = (t: string) => t === tenantId || t === tenantDomain || MULTI_TENANT.has(t);

  /** Entra's error body: the description carries trace, correlation id and timestamp lines. */
  const errorBody = (error: string, description: string, errorCodes: number[], extra: object = {}) => {
    const timestamp = new Date(clock.now())
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z');
    const [traceId, correlationId] = [randomUUID(), randomUUID()];
    const trailer = `\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`;
    return {
      error,
      error_description: `${description}${trailer}`,
      error_codes: errorCodes,
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${base}/error?code=${errorCodes[0] ?? 0}`,
      ...extra,
    };
  };

  const userFor = (login: string): User => {
    const upn = (login.includes('@') ? login : `${login}@${tenantDomain}`).toLowerCase();
    const name = (upn.split('@')[0] ?? upn)
      .split(/[._-]+/)
      .filter(Boolean)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(' ');
    return { oid: uuidFrom(`oid|${tenantId}|${upn}`), name: name || upn, preferredUsername: upn };
  };

  const discovery = (tenant: string) => ({
    token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: issuerFor(MULTI_TENANT.has(tenant) ? '{tenantid}' : tenantId),
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${base}/graph/oidc/userinfo`,
    authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'nonce',
      'name',
      'preferred_username',
      'oid',
      'tid',
    ],
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
  });

  let tamper: Record<string, unknown> | undefined;
  const idToken = (client: EntraClient, user: User, scopes: string[], nonce?: string) => {
    const now = Math.floor(clock.now() / 1000);
    const overrides = tamper ?? {};
    tamper = undefined;
    const pairwise = createHash('sha256').update(`${client.clientId}|${user.oid}`).digest('base64url');
    return new SignJWT({
      aud: client.clientId,
      iss: issuerFor(tenantId),
      iat: now,
      nbf: now,
      exp: now + ID_TOKEN_TTL_S,
      name: user.name,
      oid: user.oid,
      preferred_username: user.preferredUsername,
      rh: `0.A${randomBytes(24).toString('base64url')}.`,
      sub: pairwise.slice(0, 43),
      tid: tenantId,
      uti: randomBytes(16).toString('base64url'),
      ver: '2.0',
      ...(nonce === undefined ? {} : { nonce }),
      ...(scopes.includes('email') ? { email: user.preferredUsername } : {}),
      ...overrides,
    })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .sign(privateKey);
  };

  /** One access token for one resource (the first one requested; Graph's User.Read when none is). */
  const issueTokens = async (
    client: EntraClient,
    user: User,
    consented: string[],
    requested: string[],
    nonce?: string,
  ) => {
    const resource = resourcesOf(requested)[0] ?? GRAPH;
    const resourceScopes = requested.filter((s) => !OIDC_SCOPES.has(s) && resourceOf(s) === resource);
    const accessToken = randomBytes(48).toString('base64url');
    accessTokens.set(accessToken, { user, resource, expiresAt: clock.now() + accessTtl * 1000 });
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: (resourceScopes.length ? resourceScopes : [`${GRAPH}/User.Read`]).map(qualify).join(' '),
      expires_in: accessTtl,
      ext_expires_in: accessTtl,
      access_token: accessToken,
    };
    if (consented.includes('offline_access')) {
      const refreshToken = `1.A${randomBytes(96).toString('base64url')}`;
      const grant: RefreshGrant = {
        clientId: client.clientId,
        scopes: consented,
        user,
        lastUsedAt: clock.now(),
        state: 'active',
      };
      refreshTokens.set(refreshToken, grant);
      body.refresh_token = refreshToken;
    }
    if (consented.includes('openid')) body.id_token = await idToken(client, user, consented, nonce);
    return body;
  };

  /** A certificate assertion: signed by the client's key, `x5t` its thumbprint, for this token endpoint. */
  const authenticateAssertion = async (form: URLSearchParams, tenant: string): Promise<EntraClient> => {
    const assertion = form.get('client_assertion') ?? '';
    let issuer: unknown;
    try {
      issuer = decodeJwt(assertion).iss;
    } catch {
      issuer = undefined;
    }
    const clientId = form.get('client_id') ?? (typeof issuer === 'string' ? issuer : '');
    const client = clientFor(clientId);
    if (!client) throw new EntraError(700016, [clientId, tenantDomain]);
    const invalid = (reason: string) => new EntraError(700027, [reason]);
    if (form.get('client_assertion_type') !== JWT_BEARER) throw invalid('Unsupported client_assertion_type.');
    const certificate = client.certificate;
    if (certificate === undefined) throw invalid('The key was not found.');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      throw invalid('The client assertion is malformed.');
    }
    if (header.kid !== undefined || header.x5t !== certificate.thumbprint) {
      const used = String(header.x5t ?? header.kid ?? '');
      throw invalid(`The key was not found., Thumbprint of key used by client: '${used}'`);
    }
    try {
      await jwtVerify(assertion, certificate.publicKey, {
        algorithms: ['RS256', 'PS256'],
        audience: `${base}/${tenant}/oauth2/v2.0/token`,
        issuer: client.clientId,
        subject: client.clientId,
        requiredClaims: ['exp'],
        currentDate: new Date(clock.now()),
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw invalid(`The client assertion is not valid (${typeof code === 'string' ? code : 'unknown'}).`);
    }
    return client;
  };

  const authenticateClient = async (
    req: IncomingMessage,
    form: URLSearchParams,
    tenant: string,
  ): Promise<EntraClient> => {
    if (form.has('client_assertion') || form.has('client_assertion_type'))
      return authenticateAssertion(form, tenant);
    let clientId = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (basic) {
      const [id = '', ...rest] = Buffer.from(basic, 'base64').toString('utf8').split(':');
      clientId = formDecode(id);
      secret = formDecode(rest.join(':'));
    }
    const client = clientFor(clientId);
    if (!client) throw new EntraError(700016, [clientId ?? '', tenantDomain]);
    if (client.clientSecret === undefined && client.certificate === undefined) return client;
    if (!secret) throw new EntraError(7000218);
    if (secret !== client.clientSecret) throw new EntraError(7000215, [client.clientId]);
    return client;
  };

  const redeemCode = async (client: EntraClient, form: URLSearchParams, requested?: string[]) => {
    const code = codes.get(required(form, 'code'));
    if (!code || code.clientId !== client.clientId) throw new EntraError(9002313);
    if (code.redeemed) throw new EntraError(54005);
    if (code.expiresAt <= clock.now()) throw new EntraError(70008);
    if (required(form, 'redirect_uri') !== code.redirectUri) throw new EntraError(500112);
    if (code.codeChallenge !== undefined) {
      const verifier = required(form, 'code_verifier');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      if (challenge !== code.codeChallenge) throw new EntraError(501481);
    }
    code.redeemed = true;
    return issueTokens(client, code.user, code.scopes, requested ?? code.scopes, code.nonce);
  };

  const redeemRefreshToken = async (client: EntraClient, form: URLSearchParams, requested?: string[]) => {
    const grant = refreshTokens.get(required(form, 'refresh_token'));
    if (!grant || grant.clientId !== client.clientId) throw new EntraError(9002313);
    if (grant.state === 'rotated') throw new EntraError(70000);
    if (grant.state === 'revoked') throw new EntraError(70008);
    if (clock.now() - grant.lastUsedAt > inactivityMs) throw new EntraError(700082);
    const consented = new Set(grant.scopes.map(qualify));
    if ((requested ?? []).some((s) => !OIDC_SCOPES.has(s) && !consented.has(qualify(s)))) {
      throw new EntraError(65001, [client.clientId], { suberror: 'consent_required' });
    }
    grant.state = 'rotated';
    return issueTokens(client, grant.user, grant.scopes, requested ?? grant.scopes);
  };

  const tokenEndpoint = async (tenant: string, req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req));
    const grantType = form.get('grant_type') ?? 'unknown';
    counters.tokenRequests[grantType] = (counters.tokenRequests[grantType] ?? 0) + 1;
    const failure = failures[0];
    if (failure) {
      failure.times = (failure.times ?? 1) - 1;
      if (failure.times <= 0) failures.shift();
      const code = /^AADSTS(\d+)/.exec(failure.description)?.[1];
      const errorCodes = failure.errorCodes ?? (code ? [Number(code)] : []);
      for (const [name, value] of Object.entries(failure.headers ?? {})) res.setHeader(name, value);
      return sendJson(
        res,
        failure.status,
        errorBody(failure.error, failure.description, errorCodes, failure.extra),
      );
    }
    const client = await authenticateClient(req, form, tenant);
    if (form.has('resource')) throw new EntraError(901002);
    const requested = form.get('scope')?.split(' ').filter(Boolean);
    if (requested && resourcesOf(requested).length > 1) throw new EntraError(28000, [requested.join(' ')]);
    if (grantType === 'authorization_code')
      return sendJson(res, 200, await redeemCode(client, form, requested));
    if (grantType === 'refresh_token')
      return sendJson(res, 200, await redeemRefreshToken(client, form, requested));
    if (grantType === 'unknown') throw new EntraError(900144, ['grant_type']);
    throw new EntraError(70003, [grantType]);
  };

  const authorizeEndpoint = (tenant: string, url: URL, res: ServerResponse) => {
    const params = url.searchParams;
    const client = clientFor(params.get('client_id'));
    const redirectUri = params.get('redirect_uri') ?? client?.redirectUris[0] ?? '';
    if (!client)
      return sendErrorPage(res, new EntraError(700016, [params.get('client_id') ?? '', tenantDomain]));
    if (!client.redirectUris.includes(redirectUri)) {
      return sendErrorPage(res, new EntraError(50011, [redirectUri, client.clientId]));
    }
    const state = params.get('state') ?? undefined;
    const back = (e: EntraError) => {
      const target = new URL(redirectUri);
      const body = errorBody(e.error, e.message, [e.code]);
      for (const name of ['error', 'error_description', 'error_uri'] as const)
        target.searchParams.set(name, body[name]);
      if (state !== undefined) target.searchParams.set('state', state);
      redirect(res, target.href);
    };
    const scopes = params.get('scope')?.split(' ').filter(Boolean) ?? [];
    const codeChallenge = params.get('code_challenge') ?? undefined;
    if (params.get('response_type') !== 'code')
      return back(new EntraError(700054, [params.get('response_type') ?? '']));
    if (params.has('resource')) return back(new EntraError(901002));
    if (scopes.length === 0) return back(new EntraError(900144, ['scope']));
    if (codeChallenge !== undefined && params.get('code_challenge_method') !== 'S256')
      return back(new EntraError(501491));
    if (params.get('prompt') === 'none') return back(new EntraError(50058));

    const flow = randomBytes(24).toString('base64url');
    const nonce = params.get('nonce') ?? undefined;
    pending.set(flow, {
      client,
      redirectUri,
      scopes,
      state,
      nonce,
      codeChallenge,
      expiresAt: clock.now() + CODE_TTL_MS,
    });
    sendPage(
      res,
      200,
      'Sign in to your account',
      `<form method="post" action="/${escapeHtml(tenant)}/login">
  <input type="hidden" name="flow" value="${flow}">
  <input type="email" name="login" value="${escapeHtml(params.get('login_hint') ?? '')}" placeholder="Email, phone, or Skype" autofocus>
  <button type="submit">Sign in</button>
</form>`,
    );
  };

  const signIn = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req));
    const flowId = form.get('flow') ?? '';
    const flow = pending.get(flowId);
    const login = form.get('login')?.trim();
    if (!flow || flow.expiresAt <= clock.now() || !login) return sendErrorPage(res, new EntraError(90014));
    pending.delete(flowId);
    counters.signIns += 1;
    const code = `1.A${randomBytes(64).toString('base64url')}`;
    const { client, redirectUri, scopes, nonce, codeChallenge } = flow;
    const user = userFor(login);
    codes.set(code, {
      clientId: client.clientId,
      redirectUri,
      scopes,
      user,
      nonce,
      codeChallenge,
      expiresAt: clock.now() + CODE_TTL_MS,
      redeemed: false,
    });
    const target = new URL(redirectUri);
    target.searchParams.set('code', code);
    if (flow.state !== undefined) target.searchParams.set('state', flow.state);
    target.searchParams.set('session_state', randomUUID());
    redirect(res, target.href); // like Entra: no RFC 9207 `iss`
  };

  const graphMe = (req: IncomingMessage, res: ServerResponse) => {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const grant = token === undefined ? undefined : accessTokens.get(token);
    if (!grant || grant.resource !== GRAPH || grant.expiresAt <= clock.now()) {
      res.setHeader('www-authenticate', 'Bearer realm="", error="invalid_token"');
      const message = 'Access token has expired or is not yet valid.';
      return sendJson(res, 401, { error: { code: 'InvalidAuthenticationToken', message } });
    }
    const { oid: id, name: displayName, preferredUsername: userPrincipalName } = grant.user;
    sendJson(res, 200, { id, displayName, userPrincipalName });
  };

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base);
    if (req.method === 'GET' && url.pathname === '/graph/v1.0/me') return graphMe(req, res);
    const match = ROUTE.exec(url.pathname);
    if (!match) return sendJson(res, 404, { error: 'not_found' });
    const tenant = decodeURIComponent(match[1] ?? '');
    if (!knownTenant(tenant)) throw new EntraError(90002, [tenant]);
    switch (`${req.method} ${match[2]}`) {
      case 'GET v2.0/.well-known/openid-configuration':
        return sendJson(res, 200, discovery(tenant));
      case 'GET discovery/v2.0/keys':
        return sendJson(res, 200, { keys: [jwk] });
      case 'GET oauth2/v2.0/authorize':
        return authorizeEndpoint(tenant, url, res);
      case 'POST oauth2/v2.0/token':
        return tokenEndpoint(tenant, req, res);
      case 'POST login':
        return signIn(req, res);
      default:
        return sendJson(res, 405, { error: 'method_not_allowed' });
    }
  };

  const server = createServer((req, res) => {
    route(req, res).catch((caught: unknown) => {
      if (res.headersSent) return void res.end();
      const e = caught instanceof EntraError ? caught : new EntraError(90033);
      sendJson(res, e.status, errorBody(e.error, e.message, [e.code], e.extra));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    tenantId,
    issuer: issuerFor(tenantId),
    authority: (tenant = tenantId) => issuerFor(tenant),
    graphUrl: `${base}/graph`,
    counters,
    failNext(failure) {
      failures.push({ ...failure, times: failure.times ?? 1 });
    },
    tamperNextIdToken(claims) {
      tamper = claims;
    },
    revokeAll() {
      for (const grant of refreshTokens.values()) if (grant.state === 'active') grant.state = 'revoked';
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const ROUTE =
  /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/(?:authorize|token)|login)$/;

/** The resource a scope belongs to: everything before its last `/`; bare names are Graph's. */
function resourceOf(scope: string): string {
  const slash = scope.lastIndexOf('/');
  return scope.includes('://') && slash > scope.indexOf('://') + 2 ? scope.slice(0, slash) : GRAPH;
}
function resourcesOf(scopes: string[]): string[] {
  return [...new Set(scopes.filter((s) => !OIDC_SCOPES.has(s)).map(resourceOf))];
}
function qualify(scope: string): string {
  return scope.includes('://') ? scope : `${GRAPH}/${scope}`;
}

function required(form: URLSearchParams, name: string): string {
  const value = form.get(name);
  if (!value) throw new EntraError(900144, [name]);
  return value;
}

/** A stable UUID-shaped id derived from `seed`. */
function uuidFrom(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store, no-cache',
    pragma: 'no-cache',
  };
  res.writeHead(status, headers).end(JSON.stringify(body));
}

function sendPage(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(
    `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`,
  );
}

/** Entra shows errors it cannot send back to a verified redirect_uri as a page. */
function sendErrorPage(res: ServerResponse, e: EntraError): void {
  sendPage(res, e.status, 'Sign in', `<p>${escapeHtml(e.message)}</p>`);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' }).end();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
