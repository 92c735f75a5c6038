import { createRemoteJWKSet, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { AuthConfig } from '../config/index.js';
import { groupsFromClaim, userIdPattern } from './identity.js';

/** The claims nunq-connect reads from a platform JWT. */
export interface PlatformClaims {
  sub: string;
  name: string | null;
  role: string | null;
  /** The claim named by `auth.groupsClaim` (default `groups`): a list of strings, or one string. */
  groups: string[];
  /** `iss`, when the token names one (part of the hand-off's once-only key). */
  iss: string | null;
  /** `jti`: a hand-off token that carries one is accepted at `/session` once only. @see RFC 7519 §4.1.7 */
  jti: string | null;
  /** `exp`, seconds since the epoch (always present: tokens without it are refused). */
  exp: number;
}

/** A JWT that failed verification; the reason is for logs, never echoed with the token. */
export class TokenRejectedError extends Error {
  readonly code = 'token_rejected';
}

export type JwtVerifier = (token: string) => Promise<PlatformClaims>;

/**
 * Builds the verifier for `auth.jwt`: HS256 with a shared secret, or a JWKS URL (asymmetric
 * algorithms only), with optional issuer and audience checks. @see RFC 8725 (JWT BCP)
 */
export function createJwtVerifier(
  jwt: NonNullable<AuthConfig['jwt']>,
  clockToleranceSec = 30,
  groupsClaim = 'groups',
): JwtVerifier {
  const checks = {
    ...(jwt.issuer === undefined ? {} : { issuer: jwt.issuer }),
    ...(jwt.audience === undefined ? {} : { audience: jwt.audience }),
    clockTolerance: clockToleranceSec,
    // A platform token that never expires is refused.
    requiredClaims: ['exp', 'sub'],
  };
  const verify =
    'secret' in jwt && jwt.secret !== undefined
      ? (
          (key: Uint8Array) => (t: string) =>
            jwtVerify(t, key, { ...checks, algorithms: ['HS256'] })
        )(new TextEncoder().encode(jwt.secret))
      : (
          (jwks: ReturnType<typeof createRemoteJWKSet>) => (t: string) =>
            jwtVerify(t, jwks, { ...checks, algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] })
        )(createRemoteJWKSet(new URL((jwt as { jwksUrl: string }).jwksUrl)));
  // Verified tokens are remembered until they expire (at most a minute): the same platform token
  // usually arrives many times in a row, and a signature check costs ~100 µs.
  const verified = new Map<string, { claims: PlatformClaims; until: number }>();
  return async (token) => {
    const now = Date.now();
    const hit = verified.get(token);
    if (hit !== undefined && hit.until > now) return hit.claims;
    let payload: JWTPayload;
    try {
      ({ payload } = await verify(token));
    } catch (error) {
      throw new TokenRejectedError('token rejected', { cause: error });
    }
    if (typeof payload.sub !== 'string' || !userIdPattern.test(payload.sub)) {
      throw new TokenRejectedError('token has no usable sub claim');
    }
    // A `jti` that is not a bounded string would silently escape the once-only rule at /session.
    if (
      payload.jti !== undefined &&
      !(typeof payload.jti === 'string' && /^[\x21-\x7e]{1,256}$/.test(payload.jti))
    ) {
      throw new TokenRejectedError('token has an unusable jti claim');
    }
    const claims: PlatformClaims = {
      sub: payload.sub,
      name: typeof payload.name === 'string' ? payload.name.slice(0, 200) : null,
      role: typeof payload.role === 'string' ? payload.role : null,
      groups: groupsFromClaim(payload[groupsClaim]),
      iss: typeof payload.iss === 'string' ? payload.iss : null,
      jti: payload.jti ?? null,
      exp: payload.exp ?? 0,
    };
    if (verified.size >= 10_000) verified.delete(verified.keys().next().value as string);
    verified.set(token, { claims, until: Math.min((payload.exp ?? 0) * 1000, now + 60_000) });
    return claims;
  };
}

/** Mints an HS256 session JWT (for `nunq-connect token`, scripts and tests). */
export async function mintToken(
  secret: string,
  claims: { sub: string; name?: string; role?: string; groups?: string[] },
  options: { expiresIn?: string; issuer?: string; audience?: string; jti?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({
    ...(claims.name ? { name: claims.name } : {}),
    ...(claims.role ? { role: claims.role } : {}),
    ...(claims.groups ? { groups: claims.groups } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '12h');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  if (options.jti) jwt = jwt.setJti(options.jti);
  return jwt.sign(new TextEncoder().encode(secret));
}
