import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';

/** Who an accepted access token speaks for. */
export interface TokenHolder {
  token: string;
  sub: string;
  clientId: string;
  scopes: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
}

/** Why a request was refused, and the challenge it gets (RFC 6750 §3, RFC 9728 §5.1). */
export interface BearerRefusal {
  status: 401 | 403;
  /** The `WWW-Authenticate` header value. */
  challenge: string;
  body: { error: string; error_description: string };
}

export interface ChallengeOptions {
  /** The protected-resource metadata URL to name, or none (a 2025-03-26 server, or a bare challenge). */
  resourceMetadataUrl?: string;
  /** Send only `Bearer` (plus `error` when there is one): no `scope`, no `resource_metadata`. */
  bare: boolean;
  /** Scopes every MCP request needs, named in the challenge's `scope`. */
  scopes: string[];
}

export interface BearerVerifier {
  /** The holder of the request's token, or the refusal to answer with. */
  verify(authorization: string | undefined): Promise<TokenHolder | BearerRefusal>;
  /** The 403 of RFC 6750 §3.1 `insufficient_scope`, naming every scope `needed` (step-up). */
  insufficientScope(needed: string[]): BearerRefusal;
  /** A 401 `invalid_token` for a token that verified but is refused anyway. */
  rejected(description: string): BearerRefusal;
}

/**
 * Checks RFC 9068 JWT access tokens locally against the authorization server's JWKS: issuer,
 * audience (RFC 8707: this MCP endpoint), `typ` at+jwt, expiry with no clock tolerance. Refusals
 * carry RFC 6750 challenges with the RFC 9728 `resource_metadata` parameter.
 */
export function createBearerVerifier(options: {
  issuer: string;
  audience: string;
  jwksUri: string;
  challenge: ChallengeOptions;
}): BearerVerifier {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));
  const { challenge } = options;
  const refuse = (status: 401 | 403, error: string | undefined, description: string, scopes: string[]) => ({
    status,
    challenge: challengeHeader(challenge, error, scopes),
    body: { error: error ?? 'invalid_request', error_description: description },
  });

  return {
    async verify(authorization) {
      const match =
        authorization === undefined ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization);
      if (!match?.[1]) {
        // RFC 6750 §3.1: a request without credentials gets no error code.
        return authorization === undefined
          ? refuse(401, undefined, 'an access token is required', challenge.scopes)
          : refuse(
              401,
              'invalid_request',
              'the Authorization header is not a Bearer token',
              challenge.scopes,
            );
      }
      const token = match[1];
      try {
        const { payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          clockTolerance: 0,
          requiredClaims: ['exp', 'sub'],
        });
        const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
        if (!challenge.scopes.every((scope) => scopes.includes(scope))) {
          return refuse(
            403,
            'insufficient_scope',
            'the access token lacks a required scope',
            challenge.scopes,
          );
        }
        return {
          token,
          sub: payload.sub as string,
          clientId: typeof payload.client_id === 'string' ? payload.client_id : '',
          scopes,
          expiresAt: payload.exp as number,
        };
      } catch (error) {
        const description =
          error instanceof joseErrors.JWTExpired ? 'the access token expired' : 'the access token is invalid';
        return refuse(401, 'invalid_token', description, challenge.scopes);
      }
    },
    insufficientScope: (needed) =>
      refuse(403, 'insufficient_scope', `this call needs the scopes ${needed.join(' ')}`, needed),
    rejected: (description) => refuse(401, 'invalid_token', description, challenge.scopes),
  };
}

/** True when `verify` refused the request. */
export function isRefusal(result: TokenHolder | BearerRefusal): result is BearerRefusal {
  return 'challenge' in result;
}

function challengeHeader(options: ChallengeOptions, error: string | undefined, scopes: string[]): string {
  const params: string[] = [];
  if (error !== undefined) params.push(`error="${error}"`);
  if (!options.bare) {
    if (options.resourceMetadataUrl !== undefined) {
      params.push(`resource_metadata="${options.resourceMetadataUrl}"`);
    }
    if (scopes.length > 0) params.push(`scope="${scopes.join(' ')}"`);
  }
  return params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}`;
}
