import { randomBytes } from 'node:crypto';
import type { OidcClientMetadata } from './oidc-provider.js';

/** Where the MCP test server's variants put things: metadata paths, the issuer path, clients. */

export const MCP_PATH = '/mcp';
const PRM_ROOT = '/.well-known/oauth-protected-resource';

/** Where RFC 9728 protected-resource metadata is served (`none`: a 2025-03-26 server). */
export type ResourceMetadataLocation = 'path' | 'root-only' | 'both' | 'none';

export interface PreRegisteredClientOptions {
  redirectUris: string[];
  clientId?: string;
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
}

/** A pre-registered client's credentials (no secret for `none`). */
export interface PreRegisteredClient {
  clientId: string;
  clientSecret?: string;
  tokenEndpointAuthMethod: string;
}

/** `''` for no issuer path, else the path checked (`/tenant1`). */
export function normalizeIssuerPath(path: string | undefined): string {
  if (path === undefined || path === '' || path === '/') return '';
  if (!/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/.test(path)) {
    throw new Error(`issuerPath must look like "/tenant1", got "${path}"`);
  }
  return path;
}

/** Where RFC 9728 protected-resource metadata is served for each location. */
export function resourceMetadataPaths(location: ResourceMetadataLocation): string[] {
  const atPath = `${PRM_ROOT}${MCP_PATH}`;
  switch (location) {
    case 'path':
      return [atPath];
    case 'root-only':
      return [PRM_ROOT];
    case 'both':
      return [atPath, PRM_ROOT];
    case 'none':
      return [];
  }
}

/**
 * Where the authorization server's metadata is: RFC 8414 path-inserted and OIDC (path-inserted
 * and path-appended for an issuer with a path), or only OIDC: at the root, or only path-appended
 * for an issuer with a path (the last place the MCP spec's discovery order looks).
 */
export function authServerMetadataPaths(
  issuerPath: string,
  options: { authServerMetadata?: boolean; oidcOnly?: boolean },
): string[] {
  if (options.authServerMetadata === false) return [];
  const oauth = `/.well-known/oauth-authorization-server${issuerPath}`;
  const oidcInserted = `/.well-known/openid-configuration${issuerPath}`;
  const oidcAppended = `${issuerPath}/.well-known/openid-configuration`;
  if (issuerPath === '') return options.oidcOnly ? [oidcInserted] : [oauth, oidcInserted];
  return options.oidcOnly ? [oidcAppended] : [oauth, oidcInserted, oidcAppended];
}

/** The static client's metadata for oidc-provider, and its credentials for the test. */
export function preRegisteredClient(
  client: PreRegisteredClientOptions | undefined,
): { metadata: OidcClientMetadata; credentials: PreRegisteredClient } | undefined {
  if (client === undefined) return undefined;
  const clientId = client.clientId ?? `mcp-client-${randomBytes(6).toString('hex')}`;
  const method = client.tokenEndpointAuthMethod ?? 'client_secret_basic';
  const clientSecret = method === 'none' ? undefined : randomBytes(24).toString('base64url');
  return {
    metadata: {
      client_id: clientId,
      ...(clientSecret === undefined ? {} : { client_secret: clientSecret }),
      redirect_uris: client.redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: method,
    },
    credentials: {
      clientId,
      ...(clientSecret === undefined ? {} : { clientSecret }),
      tokenEndpointAuthMethod: method,
    },
  };
}
