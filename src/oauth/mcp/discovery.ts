import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { OutboundFetch, OutboundPolicy } from '../outbound.js';
import { type McpChallenge, parseMcpChallenge } from './challenge.js';
import { McpDiscoveryError } from './errors.js';
import { checkUrl, limitedFetch, metadataLimits } from './fetch.js';
import { canonicalServerUri, resourceMatches } from './resource.js';

export { parseMcpChallenge } from './challenge.js';
export { canonicalServerUri, resourceMatches } from './resource.js';

/** How to authorize at one MCP server: what discovery found, validated. */
export interface McpAuthorization {
  /** The server's canonical URI. */
  serverUrl: string;
  /** The RFC 8707 `resource` value: the metadata's `resource` (legacy servers: {@link serverUrl}). */
  resource: string;
  /** The authorization server's metadata; its `issuer` equals the issuer it was fetched for. */
  authorizationServer: oauth.AuthorizationServer;
  /** The `scope` of the server's 401 challenge. */
  challengeScopes?: string[];
  /** The protected-resource metadata's `scopes_supported`. */
  scopesSupported?: string[];
  /** A 2025-03-26 server: no protected-resource metadata; authorization at the server's origin. */
  legacy: boolean;
  /** Where the protected-resource metadata was found. */
  resourceMetadataUrl?: string;
  /** Where the authorization-server metadata was found; absent when default endpoints stand in. */
  authorizationServerMetadataUrl?: string;
}

export interface DiscoveryDeps {
  fetch: OutboundFetch;
  policy: OutboundPolicy;
}

export interface DiscoveryOptions {
  /** A `WWW-Authenticate` value already received from the server: no probe is sent then. */
  challenge?: string;
  /** Deadline of each request, body included (default: the outbound policy's `timeoutMs`). */
  timeoutMs?: number;
}

const protectedResourceMetadata = z.looseObject({
  resource: z.string().min(1),
  authorization_servers: z.array(z.string()).optional(),
  scopes_supported: z.array(z.string()).optional(),
});

const authorizationServerFields = z.looseObject({
  authorization_endpoint: z.string().min(1),
  token_endpoint: z.string().min(1),
  registration_endpoint: z.string().optional(),
  revocation_endpoint: z.string().optional(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  scopes_supported: z.array(z.string()).optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
});

const endpointFields = [
  'authorization_endpoint',
  'token_endpoint',
  'registration_endpoint',
  'revocation_endpoint',
] as const;

/**
 * Finds out how to authorize at an MCP server: an unauthenticated `initialize` (unless a challenge
 * is given) whose 401 names the protected-resource metadata; that metadata (hinted URL, then the
 * path-inserted well-known URL, then the root one), whose `resource` must be this server; then
 * its first authorization server's metadata, whose `issuer` must be the one asked for. Without
 * protected-resource metadata (a 2025-03-26 server) the server's origin is the authorization
 * server, with default endpoints when it publishes no metadata. Nothing is sent to an
 * authorization server before the resource check passed.
 * @see MCP authorization (2025-11-25) "Authorization Server Discovery", RFC 9728 §3, RFC 8414 §3
 */
export async function discoverMcpAuthorization(
  serverUrl: URL,
  deps: DiscoveryDeps,
  options: DiscoveryOptions = {},
): Promise<McpAuthorization> {
  const limits = { ...metadataLimits, timeoutMs: options.timeoutMs ?? deps.policy.timeoutMs };
  const get = limitedFetch(deps, limits);
  checkUrl(serverUrl, deps.policy, 'the MCP server URL');
  const serverUri = canonicalServerUri(serverUrl);
  const challenge =
    options.challenge === undefined
      ? await probe(serverUrl, limitedFetch(deps, { ...limits, body: 'discard' }))
      : await parseMcpChallenge(options.challenge);
  const challengeScopes = challenge?.scopes === undefined ? {} : { challengeScopes: challenge.scopes };

  const prm = await findResourceMetadata(serverUrl, challenge?.resourceMetadata, get);
  if (prm === undefined) {
    const origin = new URL(serverUrl.origin);
    const found = await findAuthorizationServerMetadata(origin, get, deps.policy);
    return {
      serverUrl: serverUri,
      resource: serverUri,
      authorizationServer: found?.as ?? defaultEndpoints(origin),
      ...challengeScopes,
      legacy: true,
      ...(found === undefined ? {} : { authorizationServerMetadataUrl: found.url }),
    };
  }
  const { metadata, url: resourceMetadataUrl } = prm;
  if (!resourceMatches(metadata.resource, serverUri)) {
    throw new McpDiscoveryError(
      'resource_mismatch',
      `the protected-resource metadata at ${resourceMetadataUrl} is for ${metadata.resource}, not for ${serverUri}`,
      { url: resourceMetadataUrl },
    );
  }
  const issuerValue = metadata.authorization_servers?.[0];
  if (issuerValue === undefined) {
    throw new McpDiscoveryError(
      'no_authorization_server',
      `the protected-resource metadata at ${resourceMetadataUrl} lists no authorization_servers`,
      { url: resourceMetadataUrl },
    );
  }
  const issuer = issuerUrl(issuerValue, resourceMetadataUrl, deps.policy);
  const found = await findAuthorizationServerMetadata(issuer, get, deps.policy);
  if (found === undefined) {
    throw new McpDiscoveryError(
      'metadata_not_found',
      `the authorization server ${issuer.href} publishes no OAuth or OpenID metadata`,
      { url: issuer },
    );
  }
  return {
    serverUrl: serverUri,
    resource: metadata.resource,
    authorizationServer: found.as,
    ...challengeScopes,
    ...(metadata.scopes_supported === undefined ? {} : { scopesSupported: metadata.scopes_supported }),
    legacy: false,
    resourceMetadataUrl,
    authorizationServerMetadataUrl: found.url,
  };
}

/** An unauthenticated `initialize`; its 401 (or 403) challenge, if it sent one. */
async function probe(serverUrl: URL, post: OutboundFetch): Promise<McpChallenge | undefined> {
  const response = await post(serverUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'nunq-connect', version: '1.0.0' },
      },
    }),
  });
  const header = response.headers.get('www-authenticate');
  if ((response.status === 401 || response.status === 403) && header !== null)
    return parseMcpChallenge(header);
  if (response.status < 200 || response.status > 299) return undefined;
  return probeFurther(serverUrl, post, response.headers.get('mcp-session-id'));
}

/**
 * A server may let `initialize` through and challenge only the requests that need a token (the
 * scopes of its challenge are what the first authorization should ask for): finish the handshake
 * and ask for `tools/list`, still without a token, and take that answer's challenge. Best effort:
 * any failure here just means there is no challenge to learn from. The session is closed after.
 * @see MCP authorization (2025-11-25) "Scope Selection Strategy"
 */
async function probeFurther(
  serverUrl: URL,
  post: OutboundFetch,
  sessionId: string | null,
): Promise<McpChallenge | undefined> {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
    ...(sessionId === null ? {} : { 'mcp-session-id': sessionId }),
  };
  const send = (body: unknown) => post(serverUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  try {
    await send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const listed = await send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const header = listed.headers.get('www-authenticate');
    if ((listed.status === 401 || listed.status === 403) && header !== null)
      return await parseMcpChallenge(header);
    return undefined;
  } catch (error) {
    if (error instanceof McpDiscoveryError && error.problem === 'address_refused') throw error;
    return undefined;
  } finally {
    if (sessionId !== null) await post(serverUrl, { method: 'DELETE', headers }).catch(() => undefined);
  }
}

/**
 * Where protected-resource metadata may be, in the spec's order: the challenge's hint, then
 * `/.well-known/oauth-protected-resource<path>`, then the root. @see RFC 9728 §3.1
 */
export function protectedResourceMetadataUrls(serverUrl: URL, hint?: string): URL[] {
  const path = new URL(canonicalServerUri(serverUrl)).pathname.replace(/\/$/, '');
  const candidates = [
    ...(hint === undefined ? [] : [new URL(hint)]),
    new URL(`/.well-known/oauth-protected-resource${path}${serverUrl.search}`, serverUrl.origin),
    new URL('/.well-known/oauth-protected-resource', serverUrl.origin),
  ];
  return candidates.filter((u, i) => candidates.findIndex((c) => c.href === u.href) === i);
}

/**
 * Where authorization-server metadata may be, in the MCP spec's order. oauth4webapi builds only
 * the RFC 8414 and OIDC path-appended forms; the OIDC path-inserted one is built here too, so the
 * whole order reads in one place. @see RFC 8414 §3.1, OpenID Connect Discovery 1.0 §4
 */
export function authorizationServerMetadataUrls(issuer: URL): URL[] {
  const path = issuer.pathname.replace(/\/+$/, '');
  const at = (p: string) => new URL(p, issuer.origin);
  if (path === '') {
    return [at('/.well-known/oauth-authorization-server'), at('/.well-known/openid-configuration')];
  }
  return [
    at(`/.well-known/oauth-authorization-server${path}`),
    at(`/.well-known/openid-configuration${path}`),
    at(`${path}/.well-known/openid-configuration`),
  ];
}

const metadataHeaders = { accept: 'application/json', 'mcp-protocol-version': LATEST_PROTOCOL_VERSION };

/** The first candidate that answers 200 with a JSON object, validated; undefined when none does. */
async function findResourceMetadata(
  serverUrl: URL,
  hint: string | undefined,
  get: OutboundFetch,
): Promise<{ metadata: z.infer<typeof protectedResourceMetadata>; url: string } | undefined> {
  const unavailable = new Unavailable();
  for (const url of protectedResourceMetadataUrls(serverUrl, hint)) {
    const response = await get(url, { headers: metadataHeaders });
    if (response.status !== 200) {
      unavailable.note(response, url);
      continue;
    }
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      continue; // a site that answers every path with a page
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) continue;
    const parsed = protectedResourceMetadata.safeParse(json);
    if (!parsed.success) {
      throw new McpDiscoveryError(
        'metadata_invalid',
        `the protected-resource metadata at ${url.href} is invalid: ${describeIssue(parsed.error)}`,
        { url },
      );
    }
    return { metadata: parsed.data, url: url.href };
  }
  // A server whose metadata is down for now is not a 2025-03-26 server.
  unavailable.raise();
  return undefined;
}

/**
 * The first candidate URL's authorization-server metadata whose `issuer` equals `issuer`
 * (oauth4webapi's check), its endpoints validated; undefined when none publishes any.
 */
async function findAuthorizationServerMetadata(
  issuer: URL,
  get: OutboundFetch,
  policy: OutboundPolicy,
): Promise<{ as: oauth.AuthorizationServer; url: string } | undefined> {
  const unavailable = new Unavailable();
  for (const url of authorizationServerMetadataUrls(issuer)) {
    const response = await get(url, { headers: metadataHeaders });
    if (response.status !== 200) {
      unavailable.note(response, url);
      continue;
    }
    let as: oauth.AuthorizationServer;
    try {
      as = await oauth.processDiscoveryResponse(issuer, response);
    } catch (error) {
      if (error instanceof oauth.OperationProcessingError && error.code === oauth.RESPONSE_IS_NOT_JSON)
        continue;
      if (error instanceof oauth.OperationProcessingError && error.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
        throw new McpDiscoveryError(
          'issuer_mismatch',
          `the metadata at ${url.href} names another issuer than ${issuer.href}`,
          { url, cause: error },
        );
      }
      throw new McpDiscoveryError(
        'metadata_invalid',
        `the metadata at ${url.href} is invalid (no issuer, or no JSON object)`,
        {
          url,
          cause: error,
        },
      );
    }
    return { as: validateAuthorizationServer(as, url, policy), url: url.href };
  }
  unavailable.raise();
  return undefined;
}

/** Checks the fields this client relies on; every endpoint must pass {@link checkUrl}. */
function validateAuthorizationServer(
  as: oauth.AuthorizationServer,
  url: URL,
  policy: OutboundPolicy,
): oauth.AuthorizationServer {
  const parsed = authorizationServerFields.safeParse(as);
  if (!parsed.success) {
    throw new McpDiscoveryError(
      'metadata_invalid',
      `the authorization-server metadata at ${url.href} is invalid: ${describeIssue(parsed.error)}`,
      { url },
    );
  }
  for (const field of endpointFields) {
    const value = as[field];
    if (value === undefined) continue;
    if (!URL.canParse(value)) {
      throw new McpDiscoveryError('metadata_invalid', `the ${field} of ${as.issuer} is not a URL`, { url });
    }
    checkUrl(new URL(value), policy, `the ${field} of ${as.issuer}`);
  }
  return as;
}

/** The issuer named by protected-resource metadata, checked before anything is sent to it. */
function issuerUrl(value: string, metadataUrl: string, policy: OutboundPolicy): URL {
  if (!URL.canParse(value)) {
    throw new McpDiscoveryError(
      'metadata_invalid',
      `the authorization server ${JSON.stringify(value.slice(0, 200))} named at ${metadataUrl} is not a URL`,
      { url: metadataUrl },
    );
  }
  const issuer = new URL(value);
  if (issuer.search !== '' || issuer.hash !== '') {
    throw new McpDiscoveryError(
      'metadata_invalid',
      `the authorization server ${issuer.href} named at ${metadataUrl} has a query or fragment`,
      { url: metadataUrl },
    );
  }
  checkUrl(issuer, policy, 'the authorization server');
  return issuer;
}

/**
 * A 2025-03-26 server without any metadata: its origin's `/authorize`, `/token`, `/register`.
 * That revision required PKCE of every authorization server, so S256 stands as listed.
 */
function defaultEndpoints(origin: URL): oauth.AuthorizationServer {
  return {
    issuer: origin.origin,
    authorization_endpoint: new URL('/authorize', origin).href,
    token_endpoint: new URL('/token', origin).href,
    registration_endpoint: new URL('/register', origin).href,
    code_challenge_methods_supported: ['S256'],
  };
}

/**
 * Remembers a candidate URL that failed for now (5xx, 429) rather than being absent, so a search
 * that finds nothing can tell "try again later" from "not published".
 */
class Unavailable {
  #first: { url: URL; status: number } | undefined;

  note(response: Response, url: URL): void {
    if (this.#first === undefined && (response.status >= 500 || response.status === 429)) {
      this.#first = { url, status: response.status };
    }
  }

  raise(): void {
    if (this.#first === undefined) return;
    const { url, status } = this.#first;
    throw new McpDiscoveryError('server_unreachable', `${url.href} answered HTTP ${status}`, { url, status });
  }
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'unknown problem';
  const field = issue.path.length === 0 ? 'the document' : issue.path.join('.');
  return `${field}: ${issue.message}`;
}
