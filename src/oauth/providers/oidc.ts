import * as oauth from 'oauth4webapi';
import { buildClientAuth } from '../client-auth.js';
import { classifyTokenError } from '../errors.js';
import { OAuthClient } from '../oauth-client.js';
import { isLoopbackHttpAllowed } from '../outbound.js';
import { type ProviderFactory, type ProviderSettings, quirkOptions, standardAccount } from './types.js';

/**
 * An OpenID Connect provider found by discovery from its issuer; the discovered issuer must
 * equal the configured one. @see OpenID Connect Discovery 1.0 §4, RFC 8414 §3
 */
export const createOidcClient: ProviderFactory = async ({
  provider,
  credentials,
  fetch,
  smallFetch,
  policy,
  clock,
}) => {
  const s = provider.settings as unknown as ProviderSettings;
  const issuer = new URL(s.issuer!);
  const allowHttp = isLoopbackHttpAllowed(issuer, policy);
  let as: oauth.AuthorizationServer;
  try {
    const response = await oauth.discoveryRequest(issuer, {
      [oauth.customFetch]: fetch as typeof globalThis.fetch,
      [oauth.allowInsecureRequests]: allowHttp,
    });
    as = await oauth.processDiscoveryResponse(issuer, response);
  } catch (error) {
    throw classifyTokenError(error, clock.now());
  }
  return new OAuthClient({
    providerId: provider.id,
    as,
    client: { client_id: s.clientId },
    clientAuth: await buildClientAuth(s.clientAuthMethod ?? 'none', credentials, {
      ...(s.privateKeyId ? { keyId: s.privateKeyId } : {}),
    }),
    allowHttp,
    clock,
    ...quirkOptions(s, as.token_endpoint, smallFetch ?? fetch),
    ...(s.authorizationParams ? { authorizationParams: s.authorizationParams } : {}),
    ...(s.tokenParams ? { tokenParams: s.tokenParams } : {}),
    accountFromClaims: standardAccount,
    useUserinfo: true,
  });
};
