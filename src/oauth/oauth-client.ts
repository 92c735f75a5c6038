import * as oauth from 'oauth4webapi';
import type { Clock } from '../support/clock.js';
import { connectionApiBaseUrl } from './connection-api-base.js';
import { classifyTokenError, ProviderError } from './errors.js';
import type { OutboundFetch } from './outbound.js';
import { type AccountPaths, accountFromResponse } from './response-account.js';
import type { ConnectionApiBase } from './templates/template.js';
import { type AccountIdentity, TokenSet } from './token-set.js';
import { fetchUserinfoAccount } from './userinfo.js';

/** What an authorization request needs from the flow. */
export interface AuthorizationRequest {
  redirectUri: string;
  scopes: readonly string[];
  state: string;
  codeVerifier: string;
  /** Set for OIDC (an `openid` scope): bound into the ID token. */
  nonce: string | null;
  /** Per-integration extras (prompt, login_hint, domain_hint…); never overrides core parameters. */
  extraParams?: Readonly<Record<string, string>>;
}

/** What the code exchange needs: the callback URL as received and the pending authorization. */
export interface CodeExchange {
  callbackUrl: URL;
  state: string;
  redirectUri: string;
  codeVerifier: string;
  nonce: string | null;
  requestedScopes: readonly string[];
  /** The integration's `api.baseUrl`, from which a per-connection API base may be derived. */
  integrationApiBaseUrl?: string | undefined;
}

/** The authorization response carried an `error` (e.g. `access_denied`): the user or provider declined. */
export class AuthorizationDeniedError extends Error {
  readonly code = 'authorization_denied';
  constructor(
    readonly providerError: string,
    readonly providerErrorDescription: string | undefined,
  ) {
    super(`authorization response error: ${providerError}`);
  }
}

/** The authorization response failed a security check (state, RFC 9207 `iss`, missing code). */
export class AuthorizationResponseInvalidError extends Error {
  readonly code = 'authorization_response_invalid';
}

/**
 * A valid sign-in by an account this client does not accept: a user of another organisation at a
 * single-tenant Entra app. Not transient: signing in again with the same account cannot help.
 */
export class AccountNotAcceptedError extends Error {
  readonly code = 'wrong_tenant';
  constructor(
    /** The organisation (tenant id) whose accounts are accepted. */
    readonly acceptedTenant: string,
  ) {
    super(`the account belongs to another organisation than ${acceptedTenant}`);
  }
}

export interface OAuthClientOptions {
  providerId: string;
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
  fetch: OutboundFetch;
  /** Plain http only for loopback targets the outbound policy allows (demo and tests). */
  allowHttp: boolean;
  clock: Clock;
  scopeSeparator?: ' ' | ',';
  /** Extra parameters for every authorization request (config `authorizationParams`). */
  authorizationParams?: Readonly<Record<string, string>>;
  /** Extra parameters for every token request (config `tokenParams`). */
  tokenParams?: Readonly<Record<string, string>>;
  /** Send `scope` on refresh requests (Entra wants it: one resource per token). */
  scopeOnRefresh?: boolean;
  /** Maps validated ID token claims (or userinfo) to the account. */
  accountFromClaims: (claims: Record<string, unknown>) => AccountIdentity;
  /**
   * Refuses a sign-in whose validated ID token names an account this client does not accept,
   * by throwing {@link AccountNotAcceptedError} (Entra single tenant: another tenant's user).
   */
  checkAccount?: (claims: Record<string, unknown>) => void;
  /**
   * For issuers whose ID tokens name a per-tenant issuer (Entra `organizations`/`common`):
   * the issuer expected for these (not yet validated) claims. Validation then checks it.
   */
  issuerForClaims?: (claims: Record<string, unknown>) => string;
  /** Fetch userinfo after the code exchange (never a refresh) when the ID token lacks name/email. */
  useUserinfo?: boolean;
  /**
   * Without an ID token, take the account from the userinfo endpoint after the exchange
   * (`type: oauth2` with `userinfoEndpoint`; see userinfo.ts).
   */
  userinfoWithoutIdToken?: boolean;
  /** Deadline of that userinfo request, body included (the outbound `timeoutMs`; default 10 s). */
  timeoutMs?: number;
  /** The scopes to request for an integration's configured scopes (adds what the provider needs). */
  scopePolicy?: (scopes: readonly string[]) => string[];
  /** The authorization parameter that carries the scopes (Slack user scopes: `user_scope`). */
  scopeParameter?: 'scope' | 'user_scope';
  /** Where each connection's own API base URL comes from (Salesforce, Atlassian); see connection-api-base.ts. */
  connectionApiBase?: ConnectionApiBase;
  /** Without an ID token, the account named in the token response (Notion, Dropbox, Slack). */
  accountFromTokenResponse?: AccountPaths;
}

/** An `expires_in` above this (ten years) is read as this. */
const maxExpiresInSeconds = 10 * 365 * 24 * 3600;

/**
 * A token's lifetime in whole milliseconds. oauth4webapi passes any finite non-negative
 * `expires_in`; a fraction of a millisecond, or a lifetime past a bigint column once added to
 * now, would make every write of the token set fail (PostgreSQL refuses both).
 */
export function expiresInMs(expiresIn: number): number {
  return Math.round(Math.min(expiresIn, maxExpiresInSeconds) * 1000);
}

/**
 * The OAuth 2 / OIDC mechanics every provider shares, as pure calls into oauth4webapi:
 * authorization URL with PKCE S256, callback validation (state, RFC 9207 iss), code exchange
 * with ID token claim checks (iss, aud, nonce, exp), refresh, revocation (RFC 7009).
 * Policy (when to refresh, what a failure means for a connection) lives in connections/.
 */
export class OAuthClient {
  readonly providerId: string;
  readonly #o: OAuthClientOptions;

  constructor(options: OAuthClientOptions) {
    this.providerId = options.providerId;
    this.#o = options;
  }

  /** The issuer the callback's `iss` must match, when the server advertises RFC 9207 support. */
  get expectedIssuer(): string {
    return this.#o.as.issuer;
  }

  /** Our client id at this authorization server (configured, a CIMD URL, or registered). */
  get clientId(): string {
    return this.#o.client.client_id;
  }

  /** The scopes to request for an integration; throws a `config_error` ProviderError if they cannot work. */
  scopesFor(configured: readonly string[]): string[] {
    return this.#o.scopePolicy ? this.#o.scopePolicy(configured) : [...configured];
  }

  get supportsRevocation(): boolean {
    return typeof this.#o.as.revocation_endpoint === 'string';
  }

  #requestOptions(extra: Record<string, string> = {}, fetch: OutboundFetch = this.#o.fetch) {
    const params = { ...(this.#o.tokenParams ?? {}), ...extra };
    return {
      [oauth.customFetch]: fetch as typeof globalThis.fetch,
      [oauth.allowInsecureRequests]: this.#o.allowHttp,
      ...(Object.keys(params).length === 0 ? {} : { additionalParameters: params }),
    };
  }

  /** Builds the authorization URL. @see RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 9700 §2.1.1 */
  async authorizationUrl(req: AuthorizationRequest): Promise<URL> {
    const endpoint = this.#o.as.authorization_endpoint;
    if (endpoint === undefined)
      throw new ProviderError('config_error', 'provider has no authorization endpoint');
    const url = new URL(endpoint);
    const params = url.searchParams;
    for (const [k, v] of Object.entries({
      ...(this.#o.authorizationParams ?? {}),
      ...(req.extraParams ?? {}),
    })) {
      params.set(k, v);
    }
    params.set('response_type', 'code');
    params.set('client_id', this.#o.client.client_id);
    params.set('redirect_uri', req.redirectUri);
    // No scopes: no `scope` parameter (the server's default), rather than an empty one. @see RFC 6749 §3.3
    if (req.scopes.length > 0)
      params.set(this.#o.scopeParameter ?? 'scope', req.scopes.join(this.#o.scopeSeparator ?? ' '));
    params.set('state', req.state);
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(req.codeVerifier));
    params.set('code_challenge_method', 'S256');
    if (req.nonce !== null) params.set('nonce', req.nonce);
    return url;
  }

  /**
   * Validates the callback (state, `iss`, error) and exchanges the code for tokens.
   * @see RFC 9207 §2.4, RFC 6749 §4.1.3, OIDC Core §3.1.3.7
   */
  async exchangeCode(req: CodeExchange): Promise<TokenSet> {
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(this.#o.as, this.#o.client, req.callbackUrl, req.state);
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError) {
        throw new AuthorizationDeniedError(error.error, error.error_description);
      }
      // Without the response's parameters as cause: after an `iss` mismatch the response is not the
      // expected server's, so none of its text (error, error_description) is kept. @see RFC 9207 §2.4
      const check = error instanceof oauth.OperationProcessingError ? `: ${error.message}` : '';
      throw new AuthorizationResponseInvalidError(`the authorization response failed validation${check}`);
    }
    let result: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        this.#o.as,
        this.#o.client,
        this.#o.clientAuth,
        params,
        req.redirectUri,
        req.codeVerifier,
        this.#requestOptions(),
      );
      result = await oauth.processAuthorizationCodeResponse(
        await this.#asFor(response),
        this.#o.client,
        response,
        {
          expectedNonce: req.nonce ?? oauth.expectNoNonce,
          requireIdToken: req.nonce !== null,
        },
      );
    } catch (error) {
      throw classifyTokenError(error, this.#o.clock.now());
    }
    const account = await this.#accountAfterExchange(result);
    const tokens = this.#toTokenSet(result, req.requestedScopes, undefined, account);
    const strategy = this.#o.connectionApiBase;
    if (strategy === undefined) return tokens;
    const apiBaseUrl = await connectionApiBaseUrl({
      strategy,
      response: result as unknown as Record<string, unknown>,
      accessToken: result.access_token,
      integrationBaseUrl: req.integrationApiBaseUrl,
      fetch: this.#o.fetch,
      allowHttp: this.#o.allowHttp,
      timeoutMs: this.#o.timeoutMs ?? 10_000,
    });
    return tokens.withApiBaseUrl(apiBaseUrl);
  }

  /**
   * Uses a refresh token. `bodyTimeoutMs` lets a slow answer take that long in all: a provider
   * that rotates refresh tokens has already consumed the one presented when its answer starts,
   * so giving up early loses the grant. @see RFC 6749 §6, RFC 9700 §4.14
   */
  async refresh(
    refreshToken: string,
    scopes: readonly string[],
    options: { bodyTimeoutMs?: number } = {},
  ): Promise<TokenSet> {
    let result: oauth.TokenEndpointResponse;
    try {
      const extra: Record<string, string> = this.#o.scopeOnRefresh ? { scope: scopes.join(' ') } : {};
      const { bodyTimeoutMs } = options;
      const fetch: OutboundFetch =
        bodyTimeoutMs === undefined
          ? this.#o.fetch
          : (url, init) => this.#o.fetch(url, { ...init, bodyTimeoutMs });
      const response = await oauth.refreshTokenGrantRequest(
        this.#o.as,
        this.#o.client,
        this.#o.clientAuth,
        refreshToken,
        this.#requestOptions(extra, fetch),
      );
      result = await oauth.processRefreshTokenResponse(await this.#asFor(response), this.#o.client, response);
    } catch (error) {
      throw classifyTokenError(error, this.#o.clock.now());
    }
    // No userinfo here: only a code exchange stores the account, so a refresh never pays for it.
    return this.#toTokenSet(result, scopes, refreshToken, this.#accountFromIdToken(result));
  }

  /** Revokes a token where the server has an endpoint; false when it has none. @see RFC 7009 §2 */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    if (!this.supportsRevocation) return false;
    try {
      const response = await oauth.revocationRequest(this.#o.as, this.#o.client, this.#o.clientAuth, token, {
        [oauth.customFetch]: this.#o.fetch as typeof fetch,
        [oauth.allowInsecureRequests]: this.#o.allowHttp,
        additionalParameters: { token_type_hint: hint },
      });
      await oauth.processRevocationResponse(response);
      return true;
    } catch (error) {
      throw classifyTokenError(error, this.#o.clock.now());
    }
  }

  /** For per-tenant issuers, a copy of the metadata with the issuer these ID token claims must carry. */
  async #asFor(response: Response): Promise<oauth.AuthorizationServer> {
    const issuerFor = this.#o.issuerForClaims;
    if (issuerFor === undefined || !response.ok) return this.#o.as;
    const body = (await response
      .clone()
      .json()
      .catch(() => ({}))) as { id_token?: unknown };
    if (typeof body.id_token !== 'string') return this.#o.as;
    const payload = body.id_token.split('.')[1];
    let claims: Record<string, unknown> = {};
    try {
      claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
    } catch {
      return this.#o.as; // validation will reject the malformed token
    }
    return { ...this.#o.as, issuer: issuerFor(claims) };
  }

  #idTokenClaims(result: oauth.TokenEndpointResponse): Record<string, unknown> | undefined {
    return oauth.getValidatedIdTokenClaims(result) as Record<string, unknown> | undefined;
  }

  /** The account from the validated ID token's claims; empty without an ID token. */
  #accountFromIdToken(result: oauth.TokenEndpointResponse): AccountIdentity {
    const claims = this.#idTokenClaims(result);
    return claims === undefined ? {} : this.#o.accountFromClaims(claims);
  }

  /**
   * The account after a code exchange: the ID token's, completed from userinfo when it lacks a
   * name or e-mail; without an ID token, userinfo's alone (`userinfoWithoutIdToken`).
   */
  async #accountAfterExchange(result: oauth.TokenEndpointResponse): Promise<AccountIdentity> {
    const claims = this.#idTokenClaims(result);
    if (claims !== undefined) this.#o.checkAccount?.(claims);
    const endpoint = this.#o.as.userinfo_endpoint;
    const paths = this.#o.accountFromTokenResponse;
    if (claims === undefined && paths !== undefined) {
      const named = accountFromResponse(result as unknown as Record<string, unknown>, paths);
      if (named.id !== undefined) return named;
    }
    if (claims === undefined) {
      if (!this.#o.userinfoWithoutIdToken || endpoint === undefined) return {};
      return fetchUserinfoAccount({
        as: { ...this.#o.as, userinfo_endpoint: endpoint },
        client: this.#o.client,
        accessToken: result.access_token,
        fetch: this.#o.fetch,
        allowHttp: this.#o.allowHttp,
        timeoutMs: this.#o.timeoutMs ?? 10_000,
      });
    }
    const account = this.#o.accountFromClaims(claims);
    if (!this.#o.useUserinfo || (account.name !== undefined && account.email !== undefined)) return account;
    return { ...(await this.#userinfo(result.access_token, claims)), ...account };
  }

  #toTokenSet(
    result: oauth.TokenEndpointResponse,
    requestedScopes: readonly string[],
    previousRefreshToken: string | undefined,
    account: AccountIdentity,
  ): TokenSet {
    const granted =
      typeof result.scope === 'string' ? result.scope.split(/[\s,]+/).filter((s) => s.length > 0) : null;
    return new TokenSet({
      accessToken: result.access_token,
      // Keep the old refresh token only when the provider returns none (no rotation).
      refreshToken: result.refresh_token ?? previousRefreshToken,
      idToken: result.id_token,
      tokenType: result.token_type,
      expiresAt:
        typeof result.expires_in === 'number' ? this.#o.clock.now() + expiresInMs(result.expires_in) : null,
      scopes: granted ?? (requestedScopes.length > 0 ? [...requestedScopes] : null),
      account,
      issuer: this.#o.as.issuer,
    });
  }

  /** Best effort: a failing userinfo endpoint never fails the connection. */
  async #userinfo(accessToken: string, claims: Record<string, unknown>): Promise<Partial<AccountIdentity>> {
    if (this.#o.as.userinfo_endpoint === undefined || typeof claims.sub !== 'string') return {};
    try {
      const response = await oauth.userInfoRequest(this.#o.as, this.#o.client, accessToken, {
        [oauth.customFetch]: this.#o.fetch as typeof fetch,
        [oauth.allowInsecureRequests]: this.#o.allowHttp,
      });
      const info = await oauth.processUserInfoResponse(this.#o.as, this.#o.client, claims.sub, response);
      const fromInfo = this.#o.accountFromClaims(info as Record<string, unknown>);
      return {
        ...(fromInfo.name === undefined ? {} : { name: fromInfo.name }),
        ...(fromInfo.email === undefined ? {} : { email: fromInfo.email }),
      };
    } catch {
      return {};
    }
  }
}
