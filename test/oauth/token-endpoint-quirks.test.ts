/**
 * Token endpoints that answer outside RFC 6749 §5, adapted at oauth4webapi's fetch hook: each
 * provider-shaped answer goes through the adapter, then oauth4webapi's own response processing and
 * our failure classifier, exactly as a refresh does. Table-driven, no network.
 */
import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { classifyTokenError } from '../../src/oauth/errors.js';
import type { OutboundFetch } from '../../src/oauth/outbound.js';
import type { TokenResponseShape } from '../../src/oauth/templates/index.js';
import { adaptTokenEndpoint } from '../../src/oauth/token-endpoint-quirks.js';

const tokenEndpoint = 'https://provider.example/oauth/token';
const as: oauth.AuthorizationServer = { issuer: 'https://provider.example', token_endpoint: tokenEndpoint };
const client: oauth.Client = { client_id: 'c' };

/** Runs one refresh against a canned answer through the adapter; what oauth4webapi and the classifier make of it. */
async function refreshAgainst(
  shape: TokenResponseShape,
  answer: { status: number; body: unknown; contentType?: string },
): Promise<
  | { ok: true; result: oauth.TokenEndpointResponse }
  | { ok: false; kind: string; providerError?: string | undefined; status?: number | undefined }
> {
  const calls: string[] = [];
  const fake: OutboundFetch = async (input) => {
    calls.push(String(input));
    return new Response(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': answer.contentType ?? 'application/json; charset=utf-8' },
    });
  };
  const fetch = adaptTokenEndpoint(fake, { tokenEndpoint, responseShape: shape });
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretPost('s'), 'rt', {
      [oauth.customFetch]: fetch as typeof globalThis.fetch,
    });
    const result = await oauth.processRefreshTokenResponse(as, client, response);
    return { ok: true, result };
  } catch (error) {
    const classified = classifyTokenError(error);
    return {
      ok: false,
      kind: classified.kind,
      providerError: classified.providerError,
      status: classified.status,
    };
  } finally {
    expect(calls).toEqual([tokenEndpoint]);
  }
}

describe('token endpoint quirks', () => {
  it.each([
    ['slack', 200, { ok: false, error: 'invalid_refresh_token' }, 'reauth_required', 'invalid_grant'],
    ['slack', 200, { ok: false, error: 'token_revoked' }, 'reauth_required', 'invalid_grant'],
    ['slack', 200, { ok: false, error: 'bad_client_secret' }, 'config_error', 'invalid_client'],
    ['slack', 200, { ok: false, error: 'invalid_client_id' }, 'config_error', 'invalid_client'],
    ['slack', 200, { ok: false, error: 'ratelimited' }, 'transient', 'temporarily_unavailable'],
    // An unknown code becomes a 503, which oauth4webapi does not read as an OAuth error body: still transient.
    ['slack', 200, { ok: false, error: 'internal_error' }, 'transient', undefined],
    ['slack', 200, { ok: false }, 'transient', undefined],
    [
      'github',
      200,
      { error: 'bad_refresh_token', error_description: 'x' },
      'reauth_required',
      'invalid_grant',
    ],
    ['github', 200, { error: 'incorrect_client_credentials' }, 'config_error', 'invalid_client'],
    ['github', 200, { error: 'unverified_user_email' }, 'invalid_request', 'access_denied'],
    ['hubspot', 400, { status: 'BAD_REFRESH_TOKEN', message: 'x' }, 'reauth_required', 'invalid_grant'],
    ['hubspot', 400, { status: 'BAD_CLIENT_ID', message: 'x' }, 'config_error', 'invalid_client'],
    ['hubspot', 400, { status: 'SOMETHING_NEW', message: 'x' }, 'invalid_request', 'invalid_request'],
    ['hubspot', 502, { status: 'BAD_GATEWAY', message: 'x' }, 'transient', undefined],
    ['hubspot', 400, { error: 'invalid_grant' }, 'reauth_required', 'invalid_grant'],
  ] as const)('%s HTTP %i %j → %s', async (shape, status, body, kind, providerError) => {
    const outcome = await refreshAgainst(shape, { status, body });
    expect(outcome).toMatchObject({ ok: false, kind, providerError });
  });

  it('slack: a user token in authed_user becomes the token response, the bot token left out', async () => {
    const outcome = await refreshAgainst('slack', {
      status: 200,
      body: {
        ok: true,
        access_token: 'xoxb-bot',
        token_type: 'bot',
        scope: 'commands',
        authed_user: {
          id: 'U1',
          scope: 'users:read',
          access_token: 'xoxp-user',
          token_type: 'user',
          refresh_token: 'xoxe-1',
          expires_in: 43200,
        },
        team: { id: 'T1' },
      },
    });
    expect(outcome.ok).toBe(true);
    const result = (outcome as { result: oauth.TokenEndpointResponse }).result;
    expect(result).toMatchObject({
      access_token: 'xoxp-user',
      refresh_token: 'xoxe-1',
      expires_in: 43200,
      scope: 'users:read',
      token_type: 'bearer',
    });
  });

  it('slack: a refresh answer with the token at the top level is used as it is (token_type made Bearer)', async () => {
    const outcome = await refreshAgainst('slack', {
      status: 200,
      body: {
        ok: true,
        access_token: 'xoxe.xoxp-2',
        token_type: 'user',
        refresh_token: 'xoxe-2',
        expires_in: 43200,
      },
    });
    expect(outcome).toMatchObject({
      ok: true,
      result: { access_token: 'xoxe.xoxp-2', refresh_token: 'xoxe-2', token_type: 'bearer' },
    });
  });

  it('github: a successful answer passes unchanged', async () => {
    const outcome = await refreshAgainst('github', {
      status: 200,
      body: {
        access_token: 'ghu_1',
        token_type: 'bearer',
        scope: 'repo,gist',
        expires_in: 28800,
        refresh_token: 'ghr_1',
      },
    });
    expect(outcome).toMatchObject({ ok: true, result: { access_token: 'ghu_1', refresh_token: 'ghr_1' } });
  });

  it('an answer that is not JSON is left to oauth4webapi (a 503 page stays transient)', async () => {
    const outcome = await refreshAgainst('slack', {
      status: 503,
      body: '<h1>down</h1>',
      contentType: 'text/html',
    });
    expect(outcome).toMatchObject({ ok: false, kind: 'transient', status: 503 });
  });

  it('touches only the token endpoint, and sends a JSON body when asked (Notion)', async () => {
    const seen: Array<{ url: string; type: string | null; body: string }> = [];
    const fake: OutboundFetch = async (input, init) => {
      seen.push({
        url: String(input),
        type: new Headers(init?.headers).get('content-type'),
        body: String(init?.body),
      });
      return new Response('{"ok":false,"error":"invalid_code"}', {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    const fetch = adaptTokenEndpoint(fake, { tokenEndpoint, requestBody: 'json', responseShape: 'slack' });
    const other = await fetch('https://provider.example/api/users', { method: 'GET' });
    expect(await other.json()).toEqual({ ok: false, error: 'invalid_code' }); // not rewritten
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: 'c1',
      redirect_uri: 'https://s/cb',
    });
    const answer = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({ error: 'invalid_grant', error_description: 'invalid_code' });
    expect(seen).toEqual([
      { url: 'https://provider.example/api/users', type: null, body: 'undefined' },
      {
        url: tokenEndpoint,
        type: 'application/json',
        body: JSON.stringify({ grant_type: 'authorization_code', code: 'c1', redirect_uri: 'https://s/cb' }),
      },
    ]);
  });

  it('is the plain fetch for a standard provider', () => {
    const fake: OutboundFetch = async () => new Response('');
    expect(adaptTokenEndpoint(fake, { tokenEndpoint })).toBe(fake);
  });
});
