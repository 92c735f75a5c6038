import { createPrivateKey } from 'node:crypto';
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
      return method === 'client_secret_basic' ? clientSecretBasic(secret) : oauth.ClientSecretPost(secret);
    }
    case 'private_key_jwt': {
      const pk = credentials.privateKey;
      if (pk === undefined) throw new ProviderError('config_error', 'private_key_jwt needs a private key');
      const key = await importSigningKey(pk);
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

const ecAlgorithms: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/**
 * Imports the configured private key (PEM PKCS#8 or JWK) with the JWS algorithm its type implies,
 * a JWK's own `alg` first: RS256 for RSA, ES256/384/512 by curve, Ed25519. The config accepts all
 * three key types; one that still cannot sign is a config error, never a transient failure.
 */
async function importSigningKey(pk: string | Record<string, unknown>): Promise<CryptoKey> {
  let key: unknown;
  try {
    const jwk = typeof pk === 'string' ? undefined : (pk as JWK);
    const loaded =
      jwk === undefined ? createPrivateKey(pk as string) : createPrivateKey({ key: jwk, format: 'jwk' });
    const type = loaded.asymmetricKeyType;
    const curve = loaded.asymmetricKeyDetails?.namedCurve ?? '';
    const alg = jwk?.alg ?? (type === 'ec' ? ecAlgorithms[curve] : type === 'ed25519' ? 'Ed25519' : 'RS256');
    if (alg === undefined) throw new TypeError(`unsupported elliptic curve ${curve}`);
    key =
      jwk === undefined
        ? await importPKCS8(pk as string, alg, { extractable: false })
        : await importJWK(jwk, alg);
  } catch (cause) {
    throw new ProviderError('config_error', 'the private key cannot sign private_key_jwt assertions', {
      cause,
    });
  }
  if (!(key instanceof CryptoKey)) throw new ProviderError('config_error', 'private key must be asymmetric');
  return key;
}

/**
 * `client_secret_basic` with the id and secret form-urlencoded as WHATWG's
 * application/x-www-form-urlencoded serializer does (RFC 6749 §2.3.1), which leaves `*-._`
 * alone. Written here rather than oauth4webapi's `ClientSecretBasic`, which also escapes `-`, `.`,
 * `_`, `!`, `~`, `*`, `'`, `(` and `)`: a server that compares the decoded Basic credentials
 * without form-decoding them (some do, among them the MCP conformance suite's) then sees
 * `pre%2Dregistered` instead of `pre-registered`. Both forms decode to the same value.
 */
export function clientSecretBasic(secret: string): oauth.ClientAuth {
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return (_as, client, _body, headers) => {
    const credentials = `${encode(client.client_id)}:${encode(secret)}`;
    headers.set('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`);
  };
}
