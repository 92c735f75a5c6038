import type { ClientCredentials } from '../../store/repos/catalog.js';
import type { McpRegistrations } from '../../store/repos/mcp-registrations.js';
import type { Clock } from '../../support/clock.js';
import type { ClientAuthMethod } from '../client-auth.js';
import { type RegistrationMethod, resolveClientIdentity } from '../mcp/client-identity.js';
import { discoverMcpAuthorization, type McpAuthorization } from '../mcp/discovery.js';
import { McpDiscoveryError } from '../mcp/errors.js';
import { limitedFetch, metadataLimits } from '../mcp/fetch.js';
import { OAuthClient } from '../oauth-client.js';
import { isLoopbackHttpAllowed, type OutboundFetch, type OutboundPolicy } from '../outbound.js';
import { standardAccount } from './types.js';

/** The non-secret settings of one `mcpServers` entry (contract §3). */
export interface McpServerSettings {
  url: string;
  scopes?: readonly string[];
  clientId?: string;
  clientAuthMethod?: ClientAuthMethod;
  /** Trust that an authorization server that lists no PKCE methods supports S256 anyway. */
  pkce?: 'assume-s256';
  /** Send no RFC 8707 `resource` (for authorization servers that refuse it, e.g. Entra). */
  resource?: 'omit';
}

export interface McpClientInput {
  integrationId: string;
  settings: McpServerSettings;
  /** The configured client's secret, if any. */
  credentials: ClientCredentials;
  fetch: OutboundFetch;
  /** For the client's token and revocation requests: small answers, read whole. Default `fetch`. */
  smallFetch?: OutboundFetch;
  policy: OutboundPolicy;
  clock: Clock;
  registrations: McpRegistrations;
  publicUrl: string;
  redirectUri: string;
  clientMetadataUrl?: string;
  /** What discovery found, when the caller has it (cached, or from a challenge); else discovered now. */
  discovery?: McpAuthorization;
}

export interface McpClient {
  client: OAuthClient;
  discovery: McpAuthorization;
  registration: RegistrationMethod;
}

/**
 * Builds the OAuth client for one MCP server integration: discovery (unless given), PKCE S256
 * required, the client chosen in the spec's priority, RFC 8707 `resource` on authorization, token
 * and refresh requests (unless `resource: omit`), scopes from config, else the challenge, else the
 * metadata. RFC 9207 `iss` is checked by {@link OAuthClient}: required when advertised, compared
 * exactly when present. Every request of the client goes through {@link limitedFetch}. MCP
 * authorization servers rarely issue ID tokens: as for `oauth2` providers without userinfo, the
 * account is what a validated ID token says, else none.
 * @see MCP authorization (2025-11-25), RFC 8707 §2, RFC 7636 §4.3, RFC 9207 §2.4
 */
export async function createMcpClient(input: McpClientInput): Promise<McpClient> {
  const { settings, policy } = input;
  const discovery = input.discovery ?? (await discoverMcpAuthorization(new URL(settings.url), input));
  const as = discovery.authorizationServer;
  requirePkceS256(as.code_challenge_methods_supported, as.issuer, settings.pkce);
  const identity = await resolveClientIdentity({
    as,
    ...(settings.clientId === undefined
      ? {}
      : {
          configured: {
            clientId: settings.clientId,
            ...(settings.clientAuthMethod === undefined
              ? {}
              : { clientAuthMethod: settings.clientAuthMethod }),
          },
          credentials: input.credentials,
        }),
    publicUrl: input.publicUrl,
    ...(input.clientMetadataUrl === undefined ? {} : { clientMetadataUrl: input.clientMetadataUrl }),
    redirectUri: input.redirectUri,
    registrations: input.registrations,
    fetch: input.fetch,
    policy,
    clock: input.clock,
  });
  const resource: Record<string, string> =
    settings.resource === 'omit' ? {} : { resource: discovery.resource };
  const endpoints = [as.authorization_endpoint, as.token_endpoint, as.revocation_endpoint];
  const client = new OAuthClient({
    providerId: input.integrationId,
    as,
    client: identity.client,
    clientAuth: identity.clientAuth,
    // No deadline here: a refresh passes its own (`bodyTimeoutMs`); the outbound policy bounds the rest.
    fetch: limitedFetch(
      { fetch: input.smallFetch ?? input.fetch, policy },
      { maxBodyBytes: metadataLimits.maxBodyBytes, maxRedirects: 0 },
    ),
    allowHttp: endpoints.some((e) => e !== undefined && isLoopbackHttpAllowed(new URL(e), policy)),
    clock: input.clock,
    authorizationParams: resource,
    tokenParams: resource,
    accountFromClaims: standardAccount,
    scopePolicy: (configured) => mcpScopes(configured, discovery),
    timeoutMs: policy.timeoutMs,
  });
  return { client, discovery, registration: identity.method };
}

/**
 * Refuses an authorization server that does not list PKCE S256: one that lists no methods at all
 * may not support PKCE, and MCP clients must not proceed then, unless the admin vouches for it
 * (`pkce: assume-s256`). @see MCP authorization (2025-11-25) "Authorization Code Protection"
 */
export function requirePkceS256(
  methods: readonly string[] | undefined,
  issuer: string,
  setting: McpServerSettings['pkce'],
): void {
  if (methods?.includes('S256') || setting === 'assume-s256') return;
  throw new McpDiscoveryError(
    'pkce_unsupported',
    methods === undefined
      ? `the authorization server ${issuer} does not list code_challenge_methods_supported, so PKCE S256 cannot be relied on (set pkce: assume-s256 if it supports it)`
      : `the authorization server ${issuer} lists code_challenge_methods_supported without S256 (${methods.join(', ') || 'empty'})`,
    { url: issuer },
  );
}

/**
 * The scopes to ask for: the configured ones, else the challenge's `scope`, else the metadata's
 * `scopes_supported`, else none; `offline_access` added only when the authorization server lists it.
 * @see MCP authorization (2025-11-25) "Scope Selection Strategy"
 */
export function mcpScopes(configured: readonly string[], discovery: McpAuthorization): string[] {
  const base =
    configured.length > 0 ? configured : (discovery.challengeScopes ?? discovery.scopesSupported ?? []);
  const scopes = [...new Set(base)];
  const listed = discovery.authorizationServer.scopes_supported;
  if (Array.isArray(listed) && listed.includes('offline_access') && !scopes.includes('offline_access')) {
    scopes.push('offline_access');
  }
  return scopes;
}
