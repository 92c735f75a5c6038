import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../identity/identity.js';
import { isAdmin } from '../identity/identity.js';
import type { JwtVerifier } from '../identity/jwt.js';
import { constantTimeEqual, type SessionService, sessionCookieName } from '../identity/session-service.js';
import { forbidden, notFound, Problem, unauthenticated } from './problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Resolved once per request by `identify`; undefined when anonymous. */
    identity?: Identity;
  }
}

export interface Authenticator {
  /** Resolves the caller from `Authorization: Bearer` or the session cookie. */
  identify(request: FastifyRequest): Promise<Identity | undefined>;
  /** The caller an `Authorization` header's value names: a verified bearer JWT, else a 401 Problem. */
  identifyBearer(header: string): Promise<Identity>;
  cookieName: string;
  secureCookies: boolean;
}

/** Builds the request authenticator from the configured JWT verifier and the session store. */
export function createAuthenticator(options: {
  verifyJwt: JwtVerifier | undefined;
  sessions: SessionService;
  admins: readonly string[];
  publicUrl: string;
}): Authenticator {
  const secure = new URL(options.publicUrl).protocol === 'https:';
  const cookieName = sessionCookieName(secure);
  const identifyBearer = async (header: string): Promise<Identity> => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header); // scheme is case-insensitive (RFC 9110 §11.1)
    if (match === null || options.verifyJwt === undefined)
      throw unauthenticated('Invalid Authorization header.');
    let claims: Awaited<ReturnType<JwtVerifier>>;
    try {
      claims = await options.verifyJwt(match[1]!);
    } catch {
      throw unauthenticated('The bearer token is invalid or expired.');
    }
    return {
      userId: claims.sub,
      name: claims.name,
      role: isAdmin(claims.sub, claims.role, options.admins) ? 'admin' : 'user',
      via: 'bearer',
      csrfToken: null,
      groups: claims.groups,
    };
  };
  return {
    cookieName,
    secureCookies: secure,
    identifyBearer,
    async identify(request) {
      const header = singleAuthorization(request);
      if (header !== undefined) return identifyBearer(header);
      const cookie = request.cookies[cookieName];
      if (cookie === undefined) return undefined;
      return options.sessions.resolve(cookie);
    },
  };
}

/**
 * The request's `Authorization` header, refusing a request that sends more than one (400):
 * Node keeps only the first, so which credential acts would depend on the order of headers.
 */
export function singleAuthorization(request: FastifyRequest): string | undefined {
  return singleAuthorizationOf(request.raw);
}

/** {@link singleAuthorization} of a Node request (the fast routes answer before Fastify). */
export function singleAuthorizationOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const raw = request.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (
      name.length === 13 &&
      (name === 'authorization' || name === 'Authorization' || name.toLowerCase() === 'authorization')
    ) {
      if (++seen > 1) {
        throw new Problem(400, 'bad_request', 'Bad Request', 'Send one Authorization header, not several.');
      }
    }
  }
  return header;
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Requires a signed-in user. Cookie-authenticated state changes must also carry the session's
 * CSRF token (header `x-csrf-token` or form field `_csrf`) and, when the browser sends one, a
 * same-origin `Origin`. Bearer calls are not ambient credentials and need neither.
 */
export function requireUser(request: FastifyRequest, publicUrl: string): Identity {
  const identity = request.identity;
  if (identity === undefined) throw unauthenticated();
  if (identity.via === 'session' && !safeMethods.has(request.method)) {
    const origin = request.headers.origin;
    // `Origin: null` is what a privacy-minded browser sends for its own same-origin posts.
    const sameSiteNull = origin === 'null' && request.headers['sec-fetch-site'] === 'same-origin';
    if (origin !== undefined && !sameSiteNull && origin !== new URL(publicUrl).origin) {
      throw new Problem(403, 'csrf_failed', 'Forbidden', 'Cross-origin request refused.');
    }
    const header = request.headers['x-csrf-token'];
    const body = request.body as Record<string, unknown> | undefined;
    const sent = typeof header === 'string' ? header : typeof body?._csrf === 'string' ? body._csrf : '';
    if (!constantTimeEqual(sent, identity.csrfToken ?? '')) {
      throw new Problem(
        403,
        'csrf_failed',
        'Forbidden',
        'Missing or wrong CSRF token; reload the page and retry.',
      );
    }
  }
  return identity;
}

/**
 * Requires an administrator. No credentials: 401. A signed-in non-admin (bearer or session):
 * 404, so admin routes are not advertised (contract §5); `forbidden` answers 403 instead, for
 * operator routes everyone knows exist (`/metrics`).
 */
export function requireAdmin(
  request: FastifyRequest,
  publicUrl: string,
  refusal: 'not_found' | 'forbidden' = 'not_found',
): Identity {
  const identity = requireUser(request, publicUrl);
  if (identity.role !== 'admin') throw refusal === 'forbidden' ? forbidden() : notFound();
  return identity;
}

/** Sets the session cookie: HttpOnly, SameSite=Lax, Secure (and `__Host-`) on https. */
export function setSessionCookie(
  reply: FastifyReply,
  auth: Authenticator,
  value: string,
  maxAgeSec: number,
): void {
  reply.setCookie(auth.cookieName, value, {
    httpOnly: true,
    sameSite: 'lax',
    secure: auth.secureCookies,
    path: '/',
    maxAge: maxAgeSec,
  });
}
