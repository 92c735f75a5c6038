import { createHash, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { type JWTHeaderParameters, SignJWT } from 'jose';
import * as client from 'openid-client';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent } from '../support/user-agent.js';
import { type RunningEntraServer, type StartEntraServerOptions, startEntraServer } from './entra-server.js';

const REDIRECT_URI = 'http://127.0.0.1:9/oauth/callback';
const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
const CLIENT_SECRET = 'entra-test-secret';
const SITES = 'https://graph.microsoft.com/Sites.Read.All';
const BUSINESS_CENTRAL = 'https://api.businesscentral.dynamics.com/user_impersonation';

let entra: RunningEntraServer | undefined;
afterEach(async () => {
  await entra?.close();
  entra = undefined;
});

async function start(options: Partial<StartEntraServerOptions> = {}) {
  entra = await startEntraServer({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] }],
    ...options,
  });
  const config = await client.discovery(new URL(entra.authority()), CLIENT_ID, CLIENT_SECRET, undefined, {
    execute: [client.allowInsecureRequests],
  });
  return { entra, config };
}

async function signIn(config: client.Configuration, scope: string, login = 'ada.lovelace') {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await new UserAgent().signInAtEntra(url, login);
  const checks = { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce };
  return { callback, state, checks };
}

async function rejection(promise: Promise<unknown>): Promise<client.ResponseBodyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(client.ResponseBodyError);
  return error as client.ResponseBodyError;
}

function aadsts(error: client.ResponseBodyError): number | undefined {
  return (error.cause as { error_codes?: number[] }).error_codes?.[0];
}

describe('Entra-shaped server', () => {
  it('publishes tenant discovery, with the {tenantid} placeholder for multi-tenant authorities', async () => {
    const { entra, config } = await start();
    expect(config.serverMetadata().issuer).toBe(`${entra.url}/${entra.tenantId}/v2.0`);
    expect(config.serverMetadata().authorization_response_iss_parameter_supported).toBeUndefined();

    for (const tenant of ['organizations', 'common']) {
      const res = await fetch(`${entra.authority(tenant)}/.well-known/openid-configuration`);
      const metadata = (await res.json()) as Record<string, string>;
      expect(metadata.issuer).toBe(`${entra.url}/{tenantid}/v2.0`);
      expect(metadata.token_endpoint).toBe(`${entra.url}/${tenant}/oauth2/v2.0/token`);
    }
    const unknown = await fetch(`${entra.url}/not-a-tenant/v2.0/.well-known/openid-configuration`);
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error_codes: number[] }).error_codes).toEqual([90002]);
  });

  it('runs authorization code + PKCE and issues Entra-shaped ID tokens and a refresh token', async () => {
    const { entra, config } = await start();
    const { callback, state, checks } = await signIn(config, `openid profile email offline_access ${SITES}`);

    expect(callback.origin + callback.pathname).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.has('iss')).toBe(false);

    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe(SITES);
    expect(tokens.expires_in).toBe(3600);
    expect(tokens.refresh_token).toBeTruthy();
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      iss: entra.issuer,
      aud: CLIENT_ID,
      tid: entra.tenantId,
      name: 'Ada Lovelace',
      preferred_username: 'ada.lovelace@contoso.onmicrosoft.com',
      nonce: checks.expectedNonce,
    });
    expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(claims.sub).not.toBe(claims.oid);
    expect(entra.counters).toEqual({ tokenRequests: { authorization_code: 1 }, signIns: 1 });

    // The same login maps to the same oid.
    const again = await signIn(config, 'openid offline_access');
    const second = await client.authorizationCodeGrant(config, again.callback, again.checks);
    expect(second.claims()?.oid).toBe(claims.oid);

    // The Graph stand-in accepts Graph tokens.
    const me = await fetch(`${entra.graphUrl}/v1.0/me`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(await me.json()).toMatchObject({ id: claims.oid, displayName: 'Ada Lovelace' });
  });

  it('issues no refresh token without offline_access', async () => {
    const { config } = await start();
    const { callback, checks } = await signIn(config, `openid ${BUSINESS_CENTRAL}`);
    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope).toBe(BUSINESS_CENTRAL);
  });

  it('rejects a token request spanning two resources (AADSTS28000) and the resource parameter (AADSTS901002)', async () => {
    const { config } = await start();
    const { callback, checks } = await signIn(config, `openid offline_access ${SITES} ${BUSINESS_CENTRAL}`);
    const mixed = await rejection(
      client.authorizationCodeGrant(config, callback, checks, { scope: `${SITES} ${BUSINESS_CENTRAL}` }),
    );
    expect(mixed.status).toBe(400);
    expect(mixed.error).toBe('invalid_scope');
    expect(mixed.error_description).toMatch(/^AADSTS28000: /);
    expect(mixed.error_description).toMatch(
      /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: /,
    );
    expect(aadsts(mixed)).toBe(28000);

    // The code was not spent: without a scope, the token is for the first resource, and a refresh
    // may switch to the other consented resource.
    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    expect(tokens.scope).toBe(SITES);
    const bc = await client.refreshTokenGrant(config, tokens.refresh_token!, {
      scope: `${BUSINESS_CENTRAL} offline_access`,
    });
    expect(bc.scope).toBe(BUSINESS_CENTRAL);

    const withResource = await rejection(
      client.refreshTokenGrant(config, bc.refresh_token!, { resource: 'https://graph.microsoft.com' }),
    );
    expect(withResource.error).toBe('invalid_request');
    expect(aadsts(withResource)).toBe(901002);
  });

  it('rotates refresh tokens: the old one answers invalid_grant', async () => {
    const { entra, config } = await start();
    const { callback, checks } = await signIn(config, `openid offline_access ${SITES}`);
    const tokens = await client.authorizationCodeGrant(config, callback, checks);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()?.tid).toBe(entra.tenantId);

    const reused = await rejection(client.refreshTokenGrant(config, tokens.refresh_token!));
    expect(reused.error).toBe('invalid_grant');
    expect(aadsts(reused)).toBe(70000);
    expect(entra.counters.tokenRequests).toEqual({ authorization_code: 1, refresh_token: 2 });
  });

  it('revokeAll makes every refresh token answer AADSTS70008', async () => {
    const { entra, config } = await start();
    const { callback, checks } = await signIn(config, `openid offline_access ${SITES}`);
    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    entra.revokeAll();
    const revoked = await rejection(client.refreshTokenGrant(config, tokens.refresh_token!));
    expect(revoked.error).toBe('invalid_grant');
    expect(revoked.error_description).toMatch(
      /^AADSTS70008: The provided authorization code or refresh token has expired due to inactivity/,
    );
  });

  it('injects failures with failNext, then answers normally', async () => {
    const { entra, config } = await start();
    const { callback, checks } = await signIn(config, `openid offline_access ${SITES}`);
    const tokens = await client.authorizationCodeGrant(config, callback, checks);

    entra.failNext({
      status: 400,
      error: 'invalid_grant',
      description:
        'AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.',
      extra: { suberror: 'basic_action' },
    });
    entra.failNext({
      status: 503,
      error: 'temporarily_unavailable',
      description: 'AADSTS90033: A transient error has occurred.',
      times: 2,
    });

    const mfa = await rejection(client.refreshTokenGrant(config, tokens.refresh_token!));
    expect(mfa.error).toBe('invalid_grant');
    expect(aadsts(mfa)).toBe(50076);
    expect((mfa.cause as { suberror?: string }).suberror).toBe('basic_action');
    for (let i = 0; i < 2; i += 1) {
      // 5xx bodies are not OAuth error responses to openid-client: it reports a non-conform response.
      const unavailable = await client
        .refreshTokenGrant(config, tokens.refresh_token!)
        .catch((e: unknown) => e);
      expect(unavailable).toBeInstanceOf(client.ClientError);
      expect((unavailable as client.ClientError).code).toBe('OAUTH_RESPONSE_IS_NOT_CONFORM');
      expect(((unavailable as client.ClientError).cause as Response).status).toBe(503);
    }
    // Injected answers consumed nothing: the refresh token still works.
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
  });

  it('rejects a wrong client secret (AADSTS7000215) and a wrong PKCE verifier', async () => {
    const { entra, config } = await start();
    const { callback, checks } = await signIn(config, `openid ${SITES}`);
    const wrongSecret = await client.discovery(
      new URL(entra.authority()),
      CLIENT_ID,
      'not-the-secret',
      undefined,
      {
        execute: [client.allowInsecureRequests],
      },
    );
    const badClient = await rejection(client.authorizationCodeGrant(wrongSecret, callback, checks));
    expect(badClient.status).toBe(401);
    expect(badClient.error).toBe('invalid_client');
    expect(aadsts(badClient)).toBe(7000215);

    const badVerifier = await rejection(
      client.authorizationCodeGrant(config, callback, {
        ...checks,
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
      }),
    );
    expect(badVerifier.error).toBe('invalid_grant');
  });
});

describe('Entra-shaped server: certificate credentials (client assertions)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  /** Stands in for the certificate's SHA-1 thumbprint (there is no certificate, only its key). */
  const thumbprint = createHash('sha1')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest('base64url');
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const tokenEndpoint = (server: RunningEntraServer) => `${server.url}/${server.tenantId}/oauth2/v2.0/token`;

  /** A refresh with a bogus refresh token: once the client is authenticated, it ends in AADSTS9002313. */
  async function tokenRequest(server: RunningEntraServer, fields: Record<string, string>) {
    const res = await fetch(tokenEndpoint(server), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'bogus', ...fields }),
    });
    const body = (await res.json()) as { error: string; error_codes: number[]; error_description: string };
    return {
      status: res.status,
      error: body.error,
      code: body.error_codes[0],
      description: body.error_description,
    };
  }

  function assertion(
    server: RunningEntraServer,
    options: {
      header?: Record<string, unknown>;
      claims?: Record<string, unknown>;
      key?: KeyObject;
      expiresIn?: number;
    } = {},
  ) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: CLIENT_ID,
      sub: CLIENT_ID,
      aud: tokenEndpoint(server),
      jti: randomUUID(),
      iat: now,
      exp: now + (options.expiresIn ?? 60),
      ...options.claims,
    })
      .setProtectedHeader({ alg: 'RS256', x5t: thumbprint, ...options.header } as JWTHeaderParameters)
      .sign(options.key ?? privateKey);
  }

  const asClient = (jwt: string) => ({
    client_id: CLIENT_ID,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: jwt,
  });

  it('accepts an assertion signed by the certificate key, named by x5t, for the token endpoint', async () => {
    const server = await startEntraServer({
      clients: [
        { clientId: CLIENT_ID, certificate: { publicKey, thumbprint }, redirectUris: [REDIRECT_URI] },
      ],
    });
    entra = server;
    const accepted = await tokenRequest(server, asClient(await assertion(server)));
    expect(accepted).toMatchObject({ status: 400, error: 'invalid_grant', code: 9002313 });

    const refused = async (jwt: Promise<string>) => {
      const r = await tokenRequest(server, asClient(await jwt));
      expect(r).toMatchObject({ status: 401, error: 'invalid_client', code: 700027 });
      return r.description;
    };
    expect(await refused(assertion(server, { header: { x5t: undefined, kid: thumbprint } }))).toMatch(
      /^AADSTS700027: .*The key was not found/,
    );
    await refused(assertion(server, { header: { kid: thumbprint } }));
    await refused(assertion(server, { header: { x5t: 'not-the-thumbprint' } }));
    await refused(assertion(server, { key: other }));
    await refused(assertion(server, { claims: { aud: server.issuer } }));
    await refused(assertion(server, { claims: { sub: 'someone-else' } }));
    await refused(assertion(server, { expiresIn: -120 }));
    const wrongType = await tokenRequest(server, {
      ...asClient(await assertion(server)),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
    });
    expect(wrongType).toMatchObject({ status: 401, code: 700027 });

    // Neither an assertion nor a secret: the client must authenticate.
    expect(await tokenRequest(server, { client_id: CLIENT_ID })).toMatchObject({
      status: 401,
      code: 7000218,
    });
  });

  it('refuses an assertion from a client that has only a secret', async () => {
    const { entra } = await start();
    const r = await tokenRequest(entra, asClient(await assertion(entra)));
    expect(r).toMatchObject({ status: 401, error: 'invalid_client', code: 700027 });
  });
});
