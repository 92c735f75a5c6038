import { buildClientAuth } from '../client-auth.js';
import { OAuthClient } from '../oauth-client.js';
import { isLoopbackHttpAllowed } from '../outbound.js';
import { type ProviderFactory, type ProviderSettings, quirkOptions, standardAccount } from './types.js';

/**
 * A plain OAuth 2 provider with endpoints from the config. Without an `issuer` setting the
 * token endpoint's origin stands in; a provider that sends RFC 9207 `iss` needs `issuer` set.
 * With a `userinfoEndpoint`, the connected account is read from it after the code exchange.
 */
export const createOAuth2Client: ProviderFactory = async ({
  provider,
  credentials,
  fetch,
  smallFetch,
  policy,
  clock,
}) => {
  const s = provider.settings as unknown as ProviderSettings;
  const tokenEndpoint = new URL(s.tokenEndpoint!);
  const urls = [tokenEndpoint, new URL(s.authorizationEndpoint!)];
  const allowHttp = urls.some((u) => isLoopbackHttpAllowed(u, policy));
  return new OAuthClient({
    providerId: provider.id,
    as: {
      issuer: s.issuer ?? tokenEndpoint.origin,
      authorization_endpoint: s.authorizationEndpoint!,
      token_endpoint: s.tokenEndpoint!,
      ...(s.revocationEndpoint ? { revocation_endpoint: s.revocationEndpoint } : {}),
      ...(s.userinfoEndpoint ? { userinfo_endpoint: s.userinfoEndpoint } : {}),
    },
    client: { client_id: s.clientId },
    clientAuth: await buildClientAuth(s.clientAuthMethod ?? 'none', credentials, {
      ...(s.privateKeyId ? { keyId: s.privateKeyId } : {}),
    }),
    allowHttp,
    clock,
    ...quirkOptions(s, s.tokenEndpoint, smallFetch ?? fetch),
    scopeSeparator: s.scopeSeparator ?? ' ',
    ...(s.authorizationParams ? { authorizationParams: s.authorizationParams } : {}),
    ...(s.tokenParams ? { tokenParams: s.tokenParams } : {}),
    accountFromClaims: standardAccount,
    ...(s.userinfoEndpoint ? { useUserinfo: true, userinfoWithoutIdToken: true } : {}),
    timeoutMs: policy.timeoutMs,
  });
};
