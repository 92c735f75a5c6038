/**
 * A local server shaped like one of the providers the templates describe, where a client can tell
 * the difference: the template's own endpoint paths, the client authentication it insists on
 * (Basic or body), a JSON or form token request, the authorization parameters it requires
 * (`access_type`, `audience`, `token_access_type`, `owner`, `user_scope`…), PKCE S256, token
 * responses with or without `expires_in` and refresh tokens (kept or rotated), and errors shaped
 * as the provider sends them (Slack's HTTP 200 `{ok:false}`, GitHub's HTTP 200 `{error}`,
 * HubSpot's `{status}`). It also serves what the templates look up after Connect: OIDC discovery
 * with signed ID tokens, a userinfo endpoint, Atlassian's accessible-resources, and an API that
 * accepts only live access tokens and records where each call landed.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';

export type ErrorShape = 'standard' | 'slack' | 'github' | 'hubspot';

export interface ProviderShape {
  clientId: string;
  clientSecret: string;
  authorizePath: string;
  tokenPath: string;
  /** How the client must authenticate: HTTP Basic or `client_id`/`client_secret` in the body. */
  clientAuth: 'basic' | 'post';
  /** The token request's body format the endpoint accepts (Notion: JSON only). */
  body?: 'form' | 'json';
  /** Authorization parameters that must be present with these values, or the request is refused. */
  requiredParams?: Record<string, string>;
  /** The authorization parameter the scopes must arrive in, and their separator. */
  scopeParam?: 'scope' | 'user_scope';
  scopeSeparator?: ' ' | ',';
  /** Access token lifetime; undefined: no `expires_in` (GitHub OAuth apps, Salesforce). */
  expiresIn?: number;
  refreshTokens: 'none' | 'static' | 'rotating';
  shape: ErrorShape;
  /** Extra token response fields for a code exchange, by login (Salesforce `instance_url`). */
  extraFields?: (login: string) => Record<string, unknown>;
  /** Serve OIDC discovery and sign ID tokens (issuer = this server's URL). */
  oidc?: boolean;
  userinfoPath?: string;
  /** Atlassian: the accessible-resources path and each login's sites. */
  accessibleResources?: { path: string; sites: (login: string) => Array<{ id: string; name: string }> };
}

export interface ApiCall {
  method: string;
  /** Which server got it (the provider, or an extra API host). */
  host: string;
  url: string;
  authorization: string | undefined;
  login: string | undefined;
  status: number;
}

export interface ProviderShapedServer {
  url: string;
  /** The login the next authorization request signs in as (default `alice`). */
  nextLogin: string;
  /** Every authorization request's query, in order. */
  readonly authorizeRequests: URLSearchParams[];
  /** Every token request: grant, the content type, how the client authenticated, and the answer's status. */
  readonly tokenRequests: Array<{
    grant: string;
    contentType: string;
    auth: 'basic' | 'post' | 'none';
    status: number;
  }>;
  readonly apiCalls: ApiCall[];
  /** The next token request answers this (status and body as the provider would send them). */
  failNext(answer: { status: number; body: Record<string, unknown> }): void;
  /** An error in this provider's own shape for `kind`. */
  errorFor(kind: 'bad_refresh' | 'bad_client' | 'unknown'): { status: number; body: Record<string, unknown> };
  /** Makes every access token issued so far stop working at the API (they "expired"). */
  expireAccessTokens(): void;
  /** Refresh tokens currently valid. */
  liveRefreshTokens(): number;
  /** Another API host on 127.0.0.1 that accepts this server's tokens (a Salesforce instance). */
  extraApiHost(): Promise<{ url: string; close(): Promise<void> }>;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const token = (prefix: string) => `${prefix}-${randomBytes(16).toString('base64url')}`;

export async function startProviderShapedServer(shape: ProviderShape): Promise<ProviderShapedServer> {
  const codes = new Map<
    string,
    { login: string; redirectUri: string; challenge: string; scope: string; nonce: string | null }
  >();
  const accessTokens = new Map<string, string>();
  const refreshTokens = new Map<string, { login: string; scope: string }>();
  const authorizeRequests: URLSearchParams[] = [];
  const tokenRequests: ProviderShapedServer['tokenRequests'] = [];
  const apiCalls: ApiCall[] = [];
  const injected: Array<{ status: number; body: Record<string, unknown> }> = [];
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let url = '';
  const state = { nextLogin: 'alice' };

  const errorFor = (kind: 'bad_refresh' | 'bad_client' | 'unknown', code = false) => {
    switch (shape.shape) {
      case 'slack':
        return {
          status: 200,
          body: {
            ok: false,
            error:
              kind === 'bad_refresh'
                ? code
                  ? 'invalid_code'
                  : 'invalid_refresh_token'
                : kind === 'bad_client'
                  ? 'bad_client_secret'
                  : 'internal_error',
          },
        };
      case 'github':
        return {
          status: 200,
          body: {
            error:
              kind === 'bad_refresh'
                ? code
                  ? 'bad_verification_code'
                  : 'bad_refresh_token'
                : kind === 'bad_client'
                  ? 'incorrect_client_credentials'
                  : 'server_error',
            error_description: 'as GitHub says it',
            error_uri: 'https://docs.github.com/apps',
          },
        };
      case 'hubspot':
        return kind === 'unknown'
          ? { status: 502, body: { status: 'BAD_GATEWAY', message: 'try again' } }
          : {
              status: 400,
              body: {
                status:
                  kind === 'bad_refresh' ? (code ? 'BAD_AUTH_CODE' : 'BAD_REFRESH_TOKEN') : 'BAD_CLIENT_ID',
                message: 'missing or unknown token',
                correlationId: randomBytes(8).toString('hex'),
              },
            };
      case 'standard':
        return kind === 'unknown'
          ? { status: 503, body: { error: 'temporarily_unavailable' } }
          : {
              status: kind === 'bad_client' ? 401 : 400,
              body: { error: kind === 'bad_client' ? 'invalid_client' : 'invalid_grant' },
            };
    }
  };

  /** A successful token response in this provider's shape. */
  const issue = async (login: string, scope: string, grant: string, nonce: string | null) => {
    const access = token('at');
    accessTokens.set(access, login);
    let refresh: string | undefined;
    if (shape.refreshTokens !== 'none') {
      refresh = token('rt');
      refreshTokens.set(refresh, { login, scope });
    }
    const lifetime = shape.expiresIn === undefined ? {} : { expires_in: shape.expiresIn };
    const extra = grant === 'authorization_code' ? (shape.extraFields?.(login) ?? {}) : {};
    if (shape.shape === 'slack' && grant === 'authorization_code') {
      return {
        ok: true,
        app_id: 'A0KRD7HC3',
        team: { id: 'T9TK3CUKW', name: 'Acme' },
        authed_user: {
          id: `U-${login}`,
          scope,
          access_token: access,
          token_type: 'user',
          ...(refresh ? { refresh_token: refresh } : {}),
          ...lifetime,
        },
      };
    }
    const idToken =
      shape.oidc && scope.split(/[ ,]/).includes('openid')
        ? await new SignJWT({ email: `${login}@example.com`, name: login, ...(nonce ? { nonce } : {}) })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .setIssuer(url)
            .setAudience(shape.clientId)
            .setSubject(`sub-${login}`)
            .setIssuedAt()
            .setExpirationTime('10m')
            .sign(privateKey)
        : undefined;
    return {
      ...(shape.shape === 'slack' ? { ok: true } : {}),
      access_token: access,
      token_type: shape.shape === 'slack' ? 'user' : 'bearer',
      scope,
      ...lifetime,
      ...(refresh ? { refresh_token: refresh } : {}),
      ...(idToken ? { id_token: idToken } : {}),
      ...extra,
    };
  };

  const clientAuthOf = (req: IncomingMessage, params: Record<string, string>) => {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (basic !== undefined) {
      const [id, secret] = Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent);
      return { method: 'basic' as const, ok: id === shape.clientId && secret === shape.clientSecret };
    }
    if (params.client_secret !== undefined) {
      return {
        method: 'post' as const,
        ok: params.client_id === shape.clientId && params.client_secret === shape.clientSecret,
      };
    }
    return { method: 'none' as const, ok: false };
  };

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse) {
    const raw = await readBody(req);
    const contentType = String(req.headers['content-type'] ?? '');
    const record = (grant: string, auth: 'basic' | 'post' | 'none', status: number) =>
      tokenRequests.push({ grant, contentType, auth, status });
    const wantJson = shape.body === 'json';
    if (wantJson !== contentType.includes('application/json')) {
      record('?', 'none', 400);
      return json(res, 400, { error: 'invalid_request', error_description: 'unsupported body' });
    }
    const params: Record<string, string> = wantJson
      ? (JSON.parse(raw) as Record<string, string>)
      : Object.fromEntries(new URLSearchParams(raw));
    const grant = params.grant_type ?? '?';
    const auth = clientAuthOf(req, params);
    const send = (status: number, body: Record<string, unknown>) => {
      record(grant, auth.method, status);
      // GitHub answers form-encoded unless asked for JSON.
      if (shape.shape === 'github' && !String(req.headers.accept ?? '').includes('json')) {
        res.writeHead(status, { 'content-type': 'application/x-www-form-urlencoded' });
        return res.end(new URLSearchParams(body as Record<string, string>).toString());
      }
      return json(res, status, body);
    };
    const failure = injected.shift();
    if (failure !== undefined) return send(failure.status, failure.body);
    if (auth.method !== shape.clientAuth || !auth.ok) {
      const e = errorFor('bad_client');
      return send(e.status, e.body);
    }
    if (grant === 'authorization_code') {
      const code = codes.get(params.code ?? '');
      codes.delete(params.code ?? '');
      const verifierOk =
        code !== undefined &&
        createHash('sha256')
          .update(params.code_verifier ?? '')
          .digest('base64url') === code.challenge;
      if (code === undefined || code.redirectUri !== params.redirect_uri || !verifierOk) {
        const e = errorFor('bad_refresh', true);
        return send(e.status, e.body);
      }
      return send(200, await issue(code.login, code.scope, grant, code.nonce));
    }
    if (grant === 'refresh_token') {
      const held = refreshTokens.get(params.refresh_token ?? '');
      if (held === undefined) {
        const e = errorFor('bad_refresh');
        return send(e.status, e.body);
      }
      const body: Record<string, unknown> = await issue(held.login, held.scope, grant, null);
      if (shape.refreshTokens === 'rotating') refreshTokens.delete(params.refresh_token ?? '');
      else {
        // A provider that keeps its refresh token answers without a new one.
        refreshTokens.delete(String(body.refresh_token));
        delete body.refresh_token;
      }
      return send(200, body);
    }
    return send(400, { error: 'unsupported_grant_type' });
  }

  function authorize(res: ServerResponse, query: URLSearchParams) {
    authorizeRequests.push(query);
    const redirectUri = query.get('redirect_uri') ?? '';
    const back = new URL(redirectUri);
    const refuse = (error: string) => {
      back.searchParams.set('error', error);
      back.searchParams.set('state', query.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
    };
    if (query.get('client_id') !== shape.clientId) return refuse('invalid_client');
    if (query.get('code_challenge_method') !== 'S256' || !query.get('code_challenge'))
      return refuse('invalid_request');
    for (const [k, v] of Object.entries(shape.requiredParams ?? {}))
      if (query.get(k) !== v) return refuse('invalid_request');
    const scopeParam = shape.scopeParam ?? 'scope';
    if (scopeParam !== 'scope' && query.has('scope')) return refuse('invalid_scope');
    const scope = query.get(scopeParam) ?? '';
    if (shape.scopeSeparator === ',' && scope.includes(' ')) return refuse('invalid_scope');
    const code = token('code');
    codes.set(code, {
      login: state.nextLogin,
      redirectUri,
      challenge: query.get('code_challenge') ?? '',
      scope,
      nonce: query.get('nonce'),
    });
    back.searchParams.set('code', code);
    back.searchParams.set('state', query.get('state') ?? '');
    res.writeHead(302, { location: back.href }).end();
  }

  function api(req: IncomingMessage, res: ServerResponse, host: string) {
    const authorization = req.headers.authorization;
    const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    const login = bearer === undefined ? undefined : accessTokens.get(bearer);
    const status = login === undefined ? 401 : 200;
    apiCalls.push({ method: req.method ?? '', host, url: req.url ?? '', authorization, login, status });
    if (login === undefined)
      return json(
        res,
        401,
        { message: 'invalid token' },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      );
    return json(res, 200, { login, path: req.url, host });
  }

  const server = createServer((req, res) => {
    const target = new URL(req.url ?? '/', url);
    const path = target.pathname;
    (async () => {
      if (req.method === 'POST' && path === shape.tokenPath) return tokenEndpoint(req, res);
      if (req.method === 'GET' && path === shape.authorizePath) return authorize(res, target.searchParams);
      if (shape.oidc && path === '/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer: url,
          authorization_endpoint: `${url}${shape.authorizePath}`,
          token_endpoint: `${url}${shape.tokenPath}`,
          jwks_uri: `${url}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
        });
      }
      if (shape.oidc && path === '/jwks') return json(res, 200, { keys: [jwk] });
      const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const login = bearer === undefined ? undefined : accessTokens.get(bearer);
      if (path === shape.userinfoPath) {
        if (login === undefined) return json(res, 401, { message: 'Bad credentials' });
        return json(res, 200, { id: 4242, login, name: `${login} name`, email: `${login}@example.com` });
      }
      if (shape.accessibleResources !== undefined && path === shape.accessibleResources.path) {
        if (login === undefined) return json(res, 401, { code: 401, message: 'Unauthorized' });
        return json(
          res,
          200,
          shape.accessibleResources
            .sites(login)
            .map((s) => ({ ...s, url: `https://${s.name}.atlassian.net`, scopes: [], avatarUrl: '' })),
        );
      }
      return api(req, res, 'provider');
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    get nextLogin() {
      return state.nextLogin;
    },
    set nextLogin(login: string) {
      state.nextLogin = login;
    },
    authorizeRequests,
    tokenRequests,
    apiCalls,
    failNext: (answer) => injected.push(answer),
    errorFor: (kind) => errorFor(kind),
    expireAccessTokens: () => accessTokens.clear(),
    liveRefreshTokens: () => refreshTokens.size,
    async extraApiHost() {
      const extra = createServer((req, res) =>
        api(req, res, `extra:${(extra.address() as AddressInfo).port}`),
      );
      await new Promise<void>((resolve) => extra.listen(0, '127.0.0.1', resolve));
      return {
        url: `http://127.0.0.1:${(extra.address() as AddressInfo).port}`,
        close: () =>
          new Promise<void>((resolve) => {
            extra.closeAllConnections();
            extra.close(() => resolve());
          }),
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
