import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningDemoApi, startDemoApi } from '../../src/demo/demo-api.js';
import {
  type RunningOidcProvider,
  type StartOidcProviderOptions,
  startOidcProvider,
} from '../../src/demo/oidc-provider.js';
import { UserAgent } from '../support/user-agent.js';

const REDIRECT_URI = 'http://127.0.0.1:9/oauth/callback';
const API = 'https://api.demo.nunq.test';
const CLIENT = {
  client_id: 'nunq-connect',
  client_secret: 'demo-client-secret',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: 'client_secret_post',
};

interface Peers {
  op: RunningOidcProvider;
  api: RunningDemoApi;
  config: client.Configuration;
}

const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((peer) => peer.close()));
});

async function startPeers(options: Partial<StartOidcProviderOptions> = {}): Promise<Peers> {
  const op = await startOidcProvider({
    clients: [CLIENT],
    resource: { url: API, scopes: ['items:read'] },
    accounts: { alice: { name: 'Alice Example', email: 'alice@example.org' } },
    ...options,
  });
  running.push(op);
  const api = await startDemoApi({ issuer: op.issuer, audience: API });
  running.push(api);
  const config = await client.discovery(
    new URL(op.issuer),
    CLIENT.client_id,
    CLIENT.client_secret,
    undefined,
    {
      execute: [client.allowInsecureRequests],
    },
  );
  return { op, api, config };
}

/** Runs the authorization code flow with PKCE through a scripted browser and redeems the code. */
async function signIn(config: client.Configuration, login: string, agent = new UserAgent()) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email offline_access items:read',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await agent.signInAtOidcProvider(authorizationUrl, login);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  return { callback, tokens, agent, state };
}

function callApi(api: RunningDemoApi, path: string, accessToken?: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (accessToken) headers.set('authorization', `Bearer ${accessToken}`);
  return fetch(`${api.url}${path}`, { ...init, headers });
}

async function expectInvalidGrant(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(client.ResponseBodyError);
  expect((error as client.ResponseBodyError).error).toBe('invalid_grant');
}

describe('oidc-provider peer', () => {
  it('runs authorization code + PKCE with consent, issuing a refresh token and an API JWT', async () => {
    const { op, api, config } = await startPeers();
    const { callback, tokens, agent, state } = await signIn(config, 'alice');

    expect(callback.origin + callback.pathname).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('iss')).toBe(op.issuer); // RFC 9207
    expect(agent.visited.some((url) => url.includes('/interaction/'))).toBe(true);

    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.scope?.split(' ')).toContain('items:read');
    expect(tokens.claims()).toMatchObject({
      sub: 'alice',
      name: 'Alice Example',
      email: 'alice@example.org',
    });
    const accessToken = decodeJwt(tokens.access_token);
    expect(accessToken).toMatchObject({
      iss: op.issuer,
      aud: API,
      sub: 'alice',
      client_id: CLIENT.client_id,
    });
    expect(op.counters.tokenRequests).toEqual({ authorization_code: 1 });

    const me = await callApi(api, '/me', tokens.access_token);
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ sub: 'alice', scope: 'items:read' });
    const items = await callApi(api, '/items', tokens.access_token);
    expect(((await items.json()) as { items: unknown[] }).items.length).toBeGreaterThan(0);
    const echo = await callApi(api, '/echo', tokens.access_token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(await echo.json()).toEqual({ hello: 'world' });

    const anonymous = await callApi(api, '/me');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const forged = await callApi(api, '/me', `${tokens.access_token.slice(0, -4)}AAAA`);
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(api.counters).toEqual({ requests: 5, unauthorized: 2 });
  });

  it('derives name and email for unlisted logins; a second sign-in skips the login but asks consent', async () => {
    const { config } = await startPeers();
    const agent = new UserAgent();
    const first = await signIn(config, 'bob.builder', agent);
    expect(first.tokens.claims()).toMatchObject({
      sub: 'bob.builder',
      name: 'Bob Builder',
      email: 'bob.builder@example.com',
    });
    expect(interactionPages(agent.visited)).toBe(2); // login, consent

    const visitedBefore = agent.visited.length;
    const second = await signIn(config, 'someone.else', agent);
    expect(second.tokens.claims()?.sub).toBe('bob.builder'); // the session's account, no login form
    expect(second.tokens.refresh_token).toBeTruthy();
    expect(interactionPages(agent.visited.slice(visitedBefore))).toBe(1); // consent, for offline_access
  });

  it('rotates refresh tokens and revokes the grant when a rotated one is reused', async () => {
    const { op, api, config } = await startPeers();
    const { tokens } = await signIn(config, 'alice');
    const first = tokens.refresh_token!;

    const refreshed = await client.refreshTokenGrant(config, first);
    const second = refreshed.refresh_token!;
    expect(second).toBeTruthy();
    expect(second).not.toBe(first);
    expect(decodeJwt(refreshed.access_token).aud).toBe(API);
    expect((await callApi(api, '/me', refreshed.access_token)).status).toBe(200);

    await expectInvalidGrant(client.refreshTokenGrant(config, first));
    expect(op.counters.refreshReuseDetected).toBe(1);
    await expectInvalidGrant(client.refreshTokenGrant(config, second));
    expect(op.counters.tokenRequests).toEqual({ authorization_code: 1, refresh_token: 3 });
  });

  it('keeps the refresh token when rotation is off', async () => {
    const { config } = await startPeers({ rotateRefreshToken: false });
    const { tokens } = await signIn(config, 'alice');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBe(tokens.refresh_token);
  });

  it('lets access tokens expire after accessTokenTtlSeconds', async () => {
    const { api, config } = await startPeers({ accessTokenTtlSeconds: 2 });
    const { tokens } = await signIn(config, 'alice');
    expect(tokens.expires_in).toBe(2);
    expect((await callApi(api, '/me', tokens.access_token)).status).toBe(200);
    await sleep(2500);
    const expired = await callApi(api, '/me', tokens.access_token);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect((await callApi(api, '/me', refreshed.access_token)).status).toBe(200);
  });

  it('answers the next n valid requests with 401 when told to', async () => {
    const { api, config } = await startPeers();
    const { tokens } = await signIn(config, 'alice');
    api.failNextWithUnauthorized(2);
    expect((await callApi(api, '/items', tokens.access_token)).status).toBe(401);
    expect((await callApi(api, '/items', tokens.access_token)).status).toBe(401);
    expect((await callApi(api, '/items', tokens.access_token)).status).toBe(200);
  });

  it('revokes grants per account or all of them', async () => {
    const { op, config } = await startPeers();
    const alice = await signIn(config, 'alice');
    const carol = await signIn(config, 'carol');

    expect(await op.revokeGrants('alice')).toBe(1);
    await expectInvalidGrant(client.refreshTokenGrant(config, alice.tokens.refresh_token!));
    const stillValid = await client.refreshTokenGrant(config, carol.tokens.refresh_token!);

    expect(await op.revokeGrants()).toBe(1);
    await expectInvalidGrant(client.refreshTokenGrant(config, stillValid.refresh_token!));
    expect(op.counters.refreshReuseDetected).toBe(0);
  });

  it('without a resource, issues opaque access tokens that userinfo accepts; revocation ends the grant', async () => {
    const op = await startOidcProvider({ clients: [CLIENT] });
    running.push(op);
    const config = await client.discovery(
      new URL(op.issuer),
      CLIENT.client_id,
      CLIENT.client_secret,
      undefined,
      {
        execute: [client.allowInsecureRequests],
      },
    );
    const { tokens } = await signIn(config, 'dana');
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, 'dana');
    expect(userinfo).toMatchObject({ sub: 'dana', name: 'Dana', email: 'dana@example.com' });

    await client.tokenRevocation(config, tokens.refresh_token!);
    await expectInvalidGrant(client.refreshTokenGrant(config, tokens.refresh_token!));
  });

  it('keeps offline_access with prompt=login and drops it with prompt=none', async () => {
    const { config } = await startPeers();
    const agent = new UserAgent();
    const authorize = async (prompt: string) => {
      const codeVerifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid offline_access items:read',
        prompt,
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      const callback = await agent.signInAtOidcProvider(url, 'alice');
      return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier });
    };

    expect((await authorize('login')).refresh_token).toBeTruthy();
    const silent = await authorize('none');
    expect(silent.access_token).toBeTruthy();
    expect(silent.refresh_token).toBeUndefined();
  });
});

function interactionPages(urls: string[]): number {
  return new Set(urls.filter((url) => url.includes('/interaction/')).map((url) => new URL(url).pathname))
    .size;
}
