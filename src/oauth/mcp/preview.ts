import type { OutboundFetch, OutboundPolicy } from '../outbound.js';
import { mcpScopes, requirePkceS256 } from '../providers/mcp.js';
import { chooseAuthMethod, chooseRegistration, clientRequiredError } from './client-identity.js';
import { discoverMcpAuthorization, type McpAuthorization } from './discovery.js';
import { McpDiscoveryError, type McpProblem } from './errors.js';

/** The registration method as the admin API names it. */
export type PreviewRegistration = 'cimd' | 'dcr' | 'pre-registered' | 'none';

/** What discovery found at an MCP server, for an admin to look at before saving it. */
export interface McpPreview {
  /** The RFC 8707 resource (the protected-resource metadata's `resource`); null when discovery failed before it. */
  resource: string | null;
  /** The authorization server's issuer; null when discovery failed before it. */
  authorizationServer: string | null;
  registration: PreviewRegistration | null;
  /** The scopes a first Connect would ask for. */
  scopes: string[];
  /** Everything that would stop users from connecting, each with a stable code. */
  problems: Array<{ code: McpProblem; detail: string }>;
}

export interface PreviewInput {
  url: URL;
  /** A client registered by hand for this server (`clientId` in the entry). */
  clientId?: string | undefined;
  scopes?: readonly string[] | undefined;
  pkce?: 'assume-s256' | undefined;
  publicUrl: string;
  clientMetadataUrl?: string | undefined;
  fetch: OutboundFetch;
  policy: OutboundPolicy;
}

const registrationNames = {
  configured: 'pre-registered',
  cimd: 'cimd',
  dynamic: 'dcr',
  none: 'none',
} as const;

/**
 * Runs an MCP server's authorization discovery (through the same SSRF-guarded fetch as a
 * Connect) and works out how a client would be obtained, without registering one or saving
 * anything: what an admin sees before adding the server.
 * @see MCP authorization (2025-11-25) "Authorization Server Discovery", "Client Registration Approaches"
 */
export async function previewMcpServer(input: PreviewInput): Promise<McpPreview> {
  let discovery: McpAuthorization;
  try {
    discovery = await discoverMcpAuthorization(input.url, input);
  } catch (error) {
    if (!(error instanceof McpDiscoveryError)) throw error;
    return {
      resource: null,
      authorizationServer: null,
      registration: null,
      scopes: [],
      problems: [{ code: error.problem, detail: error.message }],
    };
  }
  const as = discovery.authorizationServer;
  const problems: McpPreview['problems'] = [];
  const note = (check: () => void) => {
    try {
      check();
    } catch (error) {
      if (!(error instanceof McpDiscoveryError)) throw error;
      problems.push({ code: error.problem, detail: error.message });
    }
  };
  note(() => requirePkceS256(as.code_challenge_methods_supported, as.issuer, input.pkce));
  const choice = chooseRegistration({
    as,
    configured: input.clientId === undefined ? undefined : { clientId: input.clientId },
    publicUrl: input.publicUrl,
    clientMetadataUrl: input.clientMetadataUrl,
  });
  if (choice === 'dynamic') note(() => chooseAuthMethod(as));
  if (choice === 'none') problems.push({ code: 'client_required', detail: clientRequiredError(as).message });
  return {
    resource: discovery.resource,
    authorizationServer: as.issuer,
    registration: registrationNames[choice],
    scopes: mcpScopes(input.scopes ?? [], discovery),
    problems,
  };
}
