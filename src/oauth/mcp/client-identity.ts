import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { ClientCredentials } from '../../store/repos/catalog.js';
import type { McpRegistration, McpRegistrations } from '../../store/repos/mcp-registrations.js';
import type { Clock } from '../../support/clock.js';
import { buildClientAuth, type ClientAuthMethod } from '../client-auth.js';
import { safeErrorCode } from '../error-code.js';
import { ProviderError } from '../errors.js';
import { AuthorizationDeniedError } from '../oauth-client.js';
import type { OutboundFetch, OutboundPolicy } from '../outbound.js';
import { McpDiscoveryError } from './errors.js';
import { limitedFetch, metadataLimits } from './fetch.js';

/** How the client at an MCP server's authorization server was obtained. */
/** The fields of an RFC 7591 registration response we rely on; the rest is kept as sent. */
const registrationResponse = z.looseObject({
  client_id: z.string().min(1).max(2048),
  client_secret: z.string().min(1).max(4096).optional(),
  client_secret_expires_at: z.number().nonnegative().optional(),
});

export type RegistrationMethod = 'configured' | 'cimd' | 'dynamic';

/** The client this service is at one authorization server, with its token-endpoint authentication. */
export interface ClientIdentity {
  method: RegistrationMethod;
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
}

/** A client an admin registered by hand and configured for the MCP server. */
export interface ConfiguredClient {
  clientId: string;
  clientAuthMethod?: ClientAuthMethod;
}

export interface ClientIdentityInput {
  as: oauth.AuthorizationServer;
  configured?: ConfiguredClient;
  /** The configured client's secret or key; opened only when needed. */
  credentials?: ClientCredentials;
  /** The service's public base URL (`publicUrl`). */
  publicUrl: string;
  /** `mcp.clientMetadataUrl`: where our Client ID Metadata Document is hosted, when not by us. */
  clientMetadataUrl?: string;
  /** Our OAuth callback URL. */
  redirectUri: string;
  registrations: McpRegistrations;
  fetch: OutboundFetch;
  policy: OutboundPolicy;
  clock: Clock;
}

const clientName = 'nunq-connect';
const grantTypes = ['authorization_code', 'refresh_token'];

/** Where our Client ID Metadata Document is: `mcp.clientMetadataUrl`, else served by us. */
export function clientMetadataUrlFor(input: { publicUrl: string; clientMetadataUrl?: string }): string {
  return input.clientMetadataUrl ?? `${input.publicUrl.replace(/\/+$/, '')}/oauth/client-metadata.json`;
}

/**
 * Our Client ID Metadata Document: the document's own URL is the `client_id`; a public client
 * (PKCE, no secret) of a web application. @see draft-ietf-oauth-client-id-metadata-document §4.1
 */
export function clientMetadataDocument(input: {
  publicUrl: string;
  clientMetadataUrl?: string;
  redirectUri: string;
}): Record<string, unknown> {
  return {
    client_id: clientMetadataUrlFor(input),
    client_name: clientName,
    client_uri: input.publicUrl,
    redirect_uris: [input.redirectUri],
    grant_types: grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    application_type: 'web',
  };
}

/** How a client would be obtained at an authorization server; `none`: it offers no way (an admin must register one). */
export type RegistrationChoice = RegistrationMethod | 'none';

/**
 * Chooses how to get a client, in the MCP spec's priority, without registering anything: the
 * client configured for the server; else a Client ID Metadata Document when the authorization
 * server supports them and the document's URL can be reached by it (an https `publicUrl`, or
 * `mcp.clientMetadataUrl`); else dynamic registration when it offers an endpoint; else `none`.
 * The admin preview shows this; {@link resolveClientIdentity} acts on it.
 * @see MCP authorization (2025-11-25) "Client Registration Approaches"
 */
export function chooseRegistration(input: {
  as: oauth.AuthorizationServer;
  configured?: ConfiguredClient | undefined;
  publicUrl: string;
  clientMetadataUrl?: string | undefined;
}): RegistrationChoice {
  if (input.configured !== undefined) return 'configured';
  const cimdReachable =
    input.clientMetadataUrl !== undefined || new URL(input.publicUrl).protocol === 'https:';
  if (input.as.client_id_metadata_document_supported === true && cimdReachable) return 'cimd';
  if (input.as.registration_endpoint !== undefined) return 'dynamic';
  return 'none';
}

/** What to tell an admin when an authorization server offers no way to get a client. */
export function clientRequiredError(as: oauth.AuthorizationServer): McpDiscoveryError {
  return new McpDiscoveryError(
    'client_required',
    `the authorization server ${as.issuer} offers neither dynamic registration nor client metadata documents: register a client there and configure its clientId (and clientSecret) for this MCP server`,
    { url: as.issuer },
  );
}

/**
 * Gets the client {@link chooseRegistration} chose: the configured one; our Client ID Metadata
 * Document's URL; or a dynamic registration, stored sealed and shared (an expired one is
 * replaced); else `client_required`. @see RFC 7591
 */
export async function resolveClientIdentity(input: ClientIdentityInput): Promise<ClientIdentity> {
  const { as, configured } = input;
  const choice = chooseRegistration(input);
  if (configured !== undefined) {
    const credentials = input.credentials ?? {};
    const method = configured.clientAuthMethod ?? (credentials.clientSecret ? 'client_secret_basic' : 'none');
    return {
      method: 'configured',
      client: { client_id: configured.clientId, token_endpoint_auth_method: method },
      clientAuth: await buildClientAuth(method, credentials),
    };
  }
  if (choice === 'cimd') {
    return {
      method: 'cimd',
      client: { client_id: clientMetadataUrlFor(input), token_endpoint_auth_method: 'none' },
      clientAuth: oauth.None(),
    };
  }
  if (choice === 'dynamic') return fromRegistration(await registeredClient(input));
  throw clientRequiredError(as);
}

/**
 * Whether a failure says the authorization server no longer knows our registered client
 * (`invalid_client`, `unauthorized_client`, a refused redirect URI): the caller then drops the
 * registration and redoes it, once.
 */
export function isRegistrationRejected(error: unknown): boolean {
  const code =
    error instanceof ProviderError
      ? error.providerError
      : error instanceof AuthorizationDeniedError
        ? error.providerError
        : undefined;
  // A token endpoint answers client authentication failures with 401 (RFC 6749 §5.2), sometimes
  // with only a challenge and no error code in a body.
  if (error instanceof ProviderError && error.status === 401) return true;
  return code === 'invalid_client' || code === 'unauthorized_client' || code === 'invalid_redirect_uri';
}

/**
 * The token endpoint auth method to register with: one the server lists (RFC 8414's default
 * list is `client_secret_basic` alone), a secret over none, basic over post.
 * @see RFC 8414 §2 `token_endpoint_auth_methods_supported`
 */
export function chooseAuthMethod(
  as: oauth.AuthorizationServer,
): 'client_secret_basic' | 'client_secret_post' | 'none' {
  const listed = as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  for (const method of ['client_secret_basic', 'client_secret_post', 'none'] as const) {
    if (listed.includes(method)) return method;
  }
  throw new McpDiscoveryError(
    'client_required',
    `the authorization server ${as.issuer} lists no token endpoint auth method this service can register with (${listed.join(', ')}): configure a client for this MCP server`,
    { url: as.issuer },
  );
}

/** The stored registration for this issuer and redirect URI, registering first when there is none. */
async function registeredClient(input: ClientIdentityInput): Promise<McpRegistration> {
  const { as, registrations, redirectUri, clock } = input;
  const stored = await registrations.get(as.issuer, redirectUri);
  if (stored !== undefined && (stored.expiresAt === null || stored.expiresAt > clock.now())) return stored;
  if (stored !== undefined) {
    await registrations.dropRegistration(as.issuer, { redirectUri, clientId: stored.clientId });
  }
  const method = chooseAuthMethod(as);
  const response = await register(input, method);
  const secretExpiresAt = Number(response.client_secret_expires_at ?? 0);
  return registrations.save({
    issuer: as.issuer,
    redirectUri,
    clientId: response.client_id,
    // The method asked for stands when the server does not echo one back (RFC 7591 §3.2.1 says it should).
    response: { ...response, token_endpoint_auth_method: response.token_endpoint_auth_method ?? method },
    createdAt: clock.now(),
    expiresAt: secretExpiresAt > 0 ? secretExpiresAt * 1000 : null,
  });
}

/** One registration request through the limited fetch. @see RFC 7591 §3.1, §3.2 */
async function register(
  input: ClientIdentityInput,
  method: ClientAuthMethod,
): Promise<oauth.OmitSymbolProperties<oauth.Client>> {
  const { as } = input;
  const fetch = limitedFetch(input, {
    ...metadataLimits,
    maxRedirects: 0,
    timeoutMs: input.policy.timeoutMs,
  });
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: clientName,
        redirect_uris: [input.redirectUri],
        grant_types: grantTypes,
        response_types: ['code'],
        token_endpoint_auth_method: method,
        application_type: 'web',
      },
      // limitedFetch refuses plain http outside the allowed networks itself, on every URL.
      { [oauth.customFetch]: fetch as typeof globalThis.fetch, [oauth.allowInsecureRequests]: true },
    );
    if (response.status !== 201 && response.status !== 200) {
      return await oauth.processDynamicClientRegistrationResponse(response); // throws its error
    }
    // Read by hand, not by oauth4webapi: it refuses a `client_secret` without
    // `client_secret_expires_at`, which RFC 7591 §3.2.1 requires but servers in the field omit
    // (absent: the secret does not expire, as the MCP SDK's client reads it too).
    const parsed = registrationResponse.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) throw new Error('registration response without a usable client_id');
    return parsed.data as unknown as Awaited<
      ReturnType<typeof oauth.processDynamicClientRegistrationResponse>
    >;
  } catch (error) {
    if (error instanceof McpDiscoveryError) throw error;
    const said = error instanceof oauth.ResponseBodyError ? ` (${safeErrorCode(error.error)})` : '';
    throw new McpDiscoveryError(
      'registration_failed',
      `dynamic client registration at ${as.registration_endpoint} was refused or answered nonsense${said}`,
      {
        url: as.registration_endpoint,
        status: error instanceof oauth.ResponseBodyError ? error.status : undefined,
      },
    );
  }
}

async function fromRegistration(registration: McpRegistration): Promise<ClientIdentity> {
  const { response } = registration;
  const secret = typeof response.client_secret === 'string' ? response.client_secret : undefined;
  const declared = response.token_endpoint_auth_method;
  const method: ClientAuthMethod =
    declared === 'client_secret_basic' || declared === 'client_secret_post' || declared === 'none'
      ? declared
      : secret === undefined
        ? 'none'
        : 'client_secret_basic';
  if (method !== 'none' && secret === undefined) {
    throw new McpDiscoveryError(
      'registration_failed',
      `the client registered at ${registration.issuer} uses ${method} but was given no client secret`,
      { url: registration.issuer },
    );
  }
  return {
    method: 'dynamic',
    client: { client_id: registration.clientId, token_endpoint_auth_method: method },
    clientAuth: await buildClientAuth(method, secret === undefined ? {} : { clientSecret: secret }),
  };
}
