/**
 * What went wrong while finding out how to authorize at an MCP server, or while getting a client
 * there. Stable codes for branching, the admin view and the Integrations page:
 * - `server_unreachable`: the MCP server, or a metadata URL, did not answer (network, 5xx).
 * - `timeout`: an answer took longer than allowed.
 * - `challenge_malformed`: the `WWW-Authenticate` header does not parse, or offers no Bearer challenge.
 * - `metadata_invalid`: protected-resource or authorization-server metadata is broken or contradictory.
 * - `metadata_not_found`: no authorization-server metadata at any of the spec's locations.
 * - `resource_mismatch`: the protected-resource metadata names another resource than this server.
 * - `issuer_mismatch`: the authorization-server metadata names another issuer than the one asked.
 * - `no_authorization_server`: the protected-resource metadata lists no authorization server.
 * - `url_refused`: a URL is not http(s), or plain http where https is required.
 * - `address_refused`: a URL points at an address the outbound policy refuses.
 * - `redirect_refused`: a redirect loop, too many hops, or a redirect where none is allowed.
 * - `response_too_large`: an answer is bigger than allowed.
 * - `pkce_unsupported`: the authorization server does not list PKCE S256.
 * - `registration_failed`: dynamic client registration was refused or answered nonsense.
 * - `client_required`: the server offers no way to get a client; an admin must register one.
 */
export type McpProblem =
  | 'server_unreachable'
  | 'timeout'
  | 'challenge_malformed'
  | 'metadata_invalid'
  | 'metadata_not_found'
  | 'resource_mismatch'
  | 'issuer_mismatch'
  | 'no_authorization_server'
  | 'url_refused'
  | 'address_refused'
  | 'redirect_refused'
  | 'response_too_large'
  | 'pkce_unsupported'
  | 'registration_failed'
  | 'client_required';

/** Problems that may go away by themselves; every other one needs an admin (or the server's owner). */
const transientProblems: ReadonlySet<McpProblem> = new Set(['server_unreachable', 'timeout']);

/**
 * A failure of MCP authorization discovery or client set-up. The message names the URL or field at
 * fault for an admin; it never carries a token, a secret or a response body.
 */
export class McpDiscoveryError extends Error {
  readonly code = 'mcp_discovery_failed';
  readonly problem: McpProblem;
  /** The URL the problem is about, when there is one. */
  readonly url: string | undefined;
  /** The HTTP status that led to the problem, when there is one. */
  readonly status: number | undefined;

  constructor(
    problem: McpProblem,
    message: string,
    details: { url?: string | URL | undefined; status?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'McpDiscoveryError';
    this.problem = problem;
    this.url = details.url === undefined ? undefined : String(details.url);
    this.status = details.status;
  }

  /** How the token service should treat it: `transient` retries later, `config_error` needs an admin. */
  get kind(): 'transient' | 'config_error' {
    return transientProblems.has(this.problem) ? 'transient' : 'config_error';
  }
}
