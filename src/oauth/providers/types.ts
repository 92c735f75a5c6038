import type { ClientCredentials, ProviderRecord } from '../../store/repos/catalog.js';
import type { Clock } from '../../support/clock.js';
import type { OAuthClient } from '../oauth-client.js';
import type { OutboundFetch, OutboundPolicy } from '../outbound.js';
import type { AccountPaths } from '../response-account.js';
import type { ConnectionApiBase, TokenResponseShape } from '../templates/template.js';
import { adaptTokenEndpoint } from '../token-endpoint-quirks.js';

/** What every provider factory receives. */
export interface ProviderFactoryInput {
  provider: ProviderRecord;
  credentials: ClientCredentials;
  fetch: OutboundFetch;
  /** For the client's own calls (token, revocation, userinfo): small answers, read whole. Default `fetch`. */
  smallFetch?: OutboundFetch;
  policy: OutboundPolicy;
  clock: Clock;
}

/** Builds the client for one provider type (discovery, metadata, scopes policy). */
export type ProviderFactory = (input: ProviderFactoryInput) => Promise<OAuthClient>;

/** Provider settings as stored (the config entry minus its secrets). */
export interface ProviderSettings {
  clientId: string;
  clientAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  privateKeyId?: string;
  authorizationParams?: Record<string, string>;
  tokenParams?: Record<string, string>;
  issuer?: string;
  tenant?: string;
  authority?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  revocationEndpoint?: string;
  userinfoEndpoint?: string;
  scopeSeparator?: ' ' | ',';
  /** The template the provider was made from (informative: its values are already merged in). */
  template?: string;
  tokenResponseShape?: TokenResponseShape;
  tokenRequestBody?: 'json';
  scopeParameter?: 'scope' | 'user_scope';
  connectionApiBase?: ConnectionApiBase;
  accountFromTokenResponse?: AccountPaths;
}

/**
 * The OAuthClient options a provider's quirks set (templates/*.ts): the token endpoint adapted
 * at the fetch hook, the scope parameter, the per-connection API base.
 */
export function quirkOptions(
  s: ProviderSettings,
  tokenEndpoint: string | undefined,
  fetch: OutboundFetch,
): {
  fetch: OutboundFetch;
  scopeParameter?: 'scope' | 'user_scope';
  connectionApiBase?: ConnectionApiBase;
  accountFromTokenResponse?: AccountPaths;
} {
  return {
    fetch:
      tokenEndpoint === undefined
        ? fetch
        : adaptTokenEndpoint(fetch, {
            tokenEndpoint,
            requestBody: s.tokenRequestBody,
            responseShape: s.tokenResponseShape,
          }),
    ...(s.scopeParameter === undefined ? {} : { scopeParameter: s.scopeParameter }),
    ...(s.connectionApiBase === undefined ? {} : { connectionApiBase: s.connectionApiBase }),
    ...(s.accountFromTokenResponse === undefined
      ? {}
      : { accountFromTokenResponse: s.accountFromTokenResponse }),
  };
}

/** Maps standard claims to an account: `sub`, `name` (or `preferred_username`), `email`. */
export function standardAccount(claims: Record<string, unknown>): {
  id?: string;
  name?: string;
  email?: string;
} {
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v.slice(0, 320) : undefined);
  const id = str(claims.sub);
  const name = str(claims.name) ?? str(claims.preferred_username);
  const email = str(claims.email);
  return { ...(id ? { id } : {}), ...(name ? { name } : {}), ...(email ? { email } : {}) };
}
