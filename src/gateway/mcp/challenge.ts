import * as oauth from 'oauth4webapi';

/** What an upstream's `403` asked for: more scopes (RFC 6750 §3.1 `insufficient_scope`). */
export interface ScopeChallenge {
  /** The scopes the challenge names (empty when it names none). */
  scopes: string[];
}

const probeServer: oauth.AuthorizationServer = { issuer: 'https://challenge.invalid' };
const probeClient: oauth.Client = { client_id: 'challenge-probe' };

/**
 * The `insufficient_scope` Bearer challenge in a `WWW-Authenticate` value, or undefined when
 * there is none (or the header does not parse). Parsed by oauth4webapi: its challenge parser is
 * not exported on its own, so a synthetic UserInfo response, which it checks for challenges
 * first, carries the header to it. @see RFC 6750 §3, RFC 9110 §11.6.1
 */
export async function insufficientScope(header: string | undefined): Promise<ScopeChallenge | undefined> {
  if (header === undefined || header === '') return undefined;
  let challenges: readonly oauth.WWWAuthenticateChallenge[] = [];
  try {
    await oauth.processUserInfoResponse(
      probeServer,
      probeClient,
      oauth.skipSubjectCheck,
      new Response(null, { status: 403, headers: { 'www-authenticate': header } }),
    );
  } catch (error) {
    if (error instanceof oauth.WWWAuthenticateChallengeError) challenges = error.cause;
  }
  const bearer = challenges.find((c) => c.scheme === 'bearer' && c.parameters.error === 'insufficient_scope');
  if (bearer === undefined) return undefined;
  const scope = bearer.parameters.scope ?? '';
  return { scopes: scope.split(' ').filter((s) => s !== '') };
}
