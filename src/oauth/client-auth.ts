import { importJWK, importPKCS8, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import type { ClientCredentials } from '../store/repos/catalog.js';
import { ProviderError } from './errors.js';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/**
 * Builds the token-endpoint client authentication. `private_key_jwt` signs assertions with the
 * configured key (PEM PKCS#8 or JWK); Entra identifies certificate keys by `x5t`, so for it the
 * key id goes into that header instead of `kid`. @see RFC 7523 §2.2, RFC 6749 §2.3.1
 */
export async function buildClientAuth(
  method: ClientAuthMethod,
  credentials: ClientCredentials,
  options: { keyId?: string; keyIdHeader?: 'kid' | 'x5t'; audience?: string } = {},
): Promise<oauth.ClientAuth> {
  switch (method) {
    case 'none':
      return oauth.None();
    case 'client_secret_basic':
    case 'client_secret_post': {
      const secret = credentials.clientSecret;
      if (secret === undefined) throw new ProviderError('config_error', `${method} needs a client secret`);
      return method === 'client_secret_basic'
        ? oauth.ClientSecretBasic(secret)
        : oauth.ClientSecretPost(secret);
    }
    case 'private_key_jwt': {
      const pk = credentials.privateKey;
      if (pk === undefined) throw new ProviderError('config_error', 'private_key_jwt needs a private key');
      const key =
        typeof pk === 'string'
          ? await importPKCS8(pk, 'RS256', { extractable: false })
          : await importJWK(pk as JWK, (pk as JWK).alg ?? 'RS256');
      if (!(key instanceof CryptoKey))
        throw new ProviderError('config_error', 'private key must be asymmetric');
      const x5t = options.keyIdHeader === 'x5t' ? options.keyId : undefined;
      const audience = options.audience;
      return oauth.PrivateKeyJwt(
        { key, ...(options.keyId !== undefined && x5t === undefined ? { kid: options.keyId } : {}) },
        {
          [oauth.modifyAssertion]: (header, payload) => {
            if (x5t !== undefined) header.x5t = x5t;
            if (audience !== undefined) payload.aud = audience;
          },
        },
      );
    }
  }
}
