import * as oauth from 'oauth4webapi';
import { McpDiscoveryError } from './errors.js';

/** What a Bearer challenge of an MCP server tells a client. @see RFC 6750 §3, RFC 9728 §5.1 */
export interface McpChallenge {
  /** `resource_metadata`: where the protected-resource metadata is. */
  resourceMetadata?: string;
  /** `scope`: the scopes needed, in order. */
  scopes?: string[];
  /** `error`, e.g. `invalid_token` or `insufficient_scope`. */
  error?: string;
}

/**
 * Parses a `WWW-Authenticate` value and returns its Bearer challenge (a bare `Bearer` gives `{}`).
 * Throws `challenge_malformed` when the value does not parse, offers no Bearer challenge, or
 * names a `resource_metadata` that is no absolute URL. No I/O: async only because the parser is
 * reached through an async function (see below).
 * @see RFC 9110 §11.6.1
 */
export async function parseMcpChallenge(header: string): Promise<McpChallenge> {
  const challenges = await parseChallenges(header);
  if (challenges === undefined) {
    throw new McpDiscoveryError('challenge_malformed', 'the WWW-Authenticate header does not parse');
  }
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  if (bearer === undefined) {
    const schemes = challenges.map((c) => c.scheme).join(', ');
    throw new McpDiscoveryError(
      'challenge_malformed',
      `the WWW-Authenticate header offers no Bearer challenge (${schemes})`,
    );
  }
  const { resource_metadata: resourceMetadata, scope, error } = bearer.parameters;
  if (resourceMetadata !== undefined && !URL.canParse(resourceMetadata)) {
    throw new McpDiscoveryError(
      'challenge_malformed',
      'the resource_metadata of the WWW-Authenticate header is not an absolute URL',
    );
  }
  const scopes = scope?.split(' ').filter((s) => s.length > 0);
  return {
    ...(resourceMetadata === undefined ? {} : { resourceMetadata }),
    ...(scopes === undefined || scopes.length === 0 ? {} : { scopes }),
    ...(error === undefined ? {} : { error }),
  };
}

/**
 * oauth4webapi's `WWW-Authenticate` parser (auth-params, quoted-string escapes, token68, several
 * challenges in one value) is private; its public `processUserInfoResponse` runs it first on any
 * response and throws the parsed challenges, so a synthetic 401 carrying the value reaches it
 * without a request. The placeholder issuer and client are never used: parsing ends before them.
 */
async function parseChallenges(header: string): Promise<oauth.WWWAuthenticateChallenge[] | undefined> {
  let response: Response;
  try {
    response = new Response(null, { status: 401, headers: { 'www-authenticate': header } });
  } catch {
    return undefined; // not a valid header value at all (control characters)
  }
  try {
    await oauth.processUserInfoResponse(
      { issuer: 'urn:nunq:challenge' },
      { client_id: 'urn:nunq:challenge' },
      oauth.skipSubjectCheck,
      response,
    );
  } catch (error) {
    if (error instanceof oauth.WWWAuthenticateChallengeError) return error.cause;
  }
  return undefined;
}
