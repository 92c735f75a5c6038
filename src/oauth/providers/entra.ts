import type { Clock } from '../../support/clock.js';
import { buildClientAuth } from '../client-auth.js';
import { classifyTokenError, ProviderError } from '../errors.js';
import { AccountNotAcceptedError, OAuthClient } from '../oauth-client.js';
import { isLoopbackHttpAllowed, type OutboundFetch } from '../outbound.js';
import { type ProviderFactory, type ProviderSettings, quirkOptions } from './types.js';

const oidcScopes = new Set(['openid', 'profile', 'email', 'offline_access']);
const tenantGuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const multiTenant = new Set(['common', 'organizations', 'consumers']);

/**
 * The tenant id (GUID) of a tenant configured by domain name (`tenant: contoso.com`), read from
 * its discovery document's issuer (`{authority}/{guid}/v2.0`): ID tokens carry only the GUID
 * (`tid`), so without it a user of another organisation could not be told apart. One request,
 * when the client is built (the registry caches the client).
 */
async function tenantIdOfDomain(
  metadataUrl: string,
  authority: string,
  fetch: OutboundFetch,
  clock: Clock,
): Promise<string> {
  let issuer: unknown;
  try {
    const response = await fetch(metadataUrl, { headers: { accept: 'application/json' } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new ProviderError(
        response.status >= 500 ? 'transient' : 'config_error',
        `the tenant's discovery document answered HTTP ${response.status}`,
        { status: response.status },
      );
    }
    issuer = ((await response.json()) as { issuer?: unknown }).issuer;
  } catch (error) {
    if (error instanceof ProviderError) throw error;
    throw classifyTokenError(error, clock.now());
  }
  const prefix = `${authority}/`;
  const guid =
    typeof issuer === 'string' && issuer.startsWith(prefix) && issuer.endsWith('/v2.0')
      ? issuer.slice(prefix.length, -'/v2.0'.length)
      : '';
  if (!tenantGuid.test(guid)) {
    throw new ProviderError(
      'config_error',
      "the tenant's discovery document names no tenant id in its issuer",
    );
  }
  return guid.toLowerCase();
}

/**
 * The resource a scope names: `https://graph.microsoft.com/Sites.Read.All` → its origin; a bare
 * `User.Read` is Microsoft Graph's; `api://<app>/scope` → `api://<app>`.
 */
export function entraResourceOf(scope: string): string {
  if (scope.startsWith('api://')) return scope.slice(0, scope.lastIndexOf('/'));
  if (/^https?:\/\//.test(scope)) {
    const u = new URL(scope);
    return `${u.protocol}//${u.host}`;
  }
  return 'https://graph.microsoft.com';
}

/**
 * Entra needs `openid profile` for the `oid`/`tid` claims and `offline_access` for a refresh
 * token, and issues one access token per resource: scopes spanning two resources are refused
 * here rather than at Entra (AADSTS28000).
 */
export function entraScopes(configured: readonly string[]): string[] {
  const resources = new Set(configured.filter((s) => !oidcScopes.has(s)).map(entraResourceOf));
  if (resources.size > 1) {
    throw new ProviderError(
      'config_error',
      `Entra issues one access token per resource; these scopes name ${resources.size}: ${[...resources].join(', ')}`,
    );
  }
  const scopes = [...configured];
  for (const s of ['openid', 'profile', 'offline_access']) if (!scopes.includes(s)) scopes.push(s);
  return scopes;
}

/**
 * Microsoft Entra ID v2.0. Endpoints come from `authority` and `tenant`, not discovery: for the
 * multi-tenant `common`/`organizations`/`consumers` the discovery issuer is a `{tenantid}`
 * template, so each ID token's issuer is checked against the template filled with its own `tid`
 * (and, for a single tenant, that `tid` must be the configured tenant: its GUID, or for a tenant
 * configured by domain name, the GUID its discovery document names). No RFC 8707 `resource`
 * parameter is ever sent (Entra rejects it), and there is no revocation endpoint.
 * The account is `oid@tid`, never the email or UPN, which can be reassigned.
 */
export const createEntraClient: ProviderFactory = async ({
  provider,
  credentials,
  fetch,
  smallFetch,
  policy,
  clock,
}) => {
  const s = provider.settings as unknown as ProviderSettings;
  const authority = (s.authority ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  const tenant = s.tenant ?? 'organizations';
  const base = `${authority}/${encodeURIComponent(tenant)}`;
  const allowHttp = isLoopbackHttpAllowed(new URL(authority), policy);
  const singleTenant = tenantGuid.test(tenant)
    ? tenant.toLowerCase()
    : multiTenant.has(tenant)
      ? undefined
      : await tenantIdOfDomain(`${base}/v2.0/.well-known/openid-configuration`, authority, fetch, clock);
  return new OAuthClient({
    providerId: provider.id,
    as: {
      issuer: `${authority}/${singleTenant ?? '{tenantid}'}/v2.0`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
    },
    client: { client_id: s.clientId },
    clientAuth: await buildClientAuth(s.clientAuthMethod ?? 'none', credentials, {
      ...(s.privateKeyId ? { keyId: s.privateKeyId } : {}),
      keyIdHeader: 'x5t',
      // Entra wants the token endpoint as the assertion's audience (the issuer is a template for multi-tenant apps).
      audience: `${base}/oauth2/v2.0/token`,
    }),
    allowHttp,
    clock,
    ...quirkOptions(s, `${base}/oauth2/v2.0/token`, smallFetch ?? fetch),
    ...(s.authorizationParams ? { authorizationParams: s.authorizationParams } : {}),
    ...(s.tokenParams ? { tokenParams: s.tokenParams } : {}),
    scopeOnRefresh: true,
    scopePolicy: entraScopes,
    issuerForClaims: (claims) => {
      const tid =
        typeof claims.tid === 'string' && tenantGuid.test(claims.tid) ? claims.tid.toLowerCase() : 'invalid';
      return `${authority}/${tid}/v2.0`;
    },
    // A single-tenant app accepts only its own tenant's users. Checked on the validated ID token
    // (its issuer matched its own tid), so a refusal names a sign-in Entra really made.
    checkAccount: (claims) => {
      if (singleTenant === undefined) return;
      const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : undefined;
      if (tid !== singleTenant) throw new AccountNotAcceptedError(singleTenant);
    },
    accountFromClaims: (claims) => {
      const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v.slice(0, 320) : undefined);
      const oid = str(claims.oid);
      const tid = str(claims.tid);
      const name = str(claims.name) ?? str(claims.preferred_username);
      const email =
        str(claims.email) ??
        (str(claims.preferred_username)?.includes('@') ? str(claims.preferred_username) : undefined);
      return {
        ...(oid && tid ? { id: `${oid}@${tid}` } : {}),
        ...(name ? { name } : {}),
        ...(email ? { email } : {}),
      };
    },
  });
};
