/**
 * The failure classifier (src/oauth/errors.ts) through the real OAuth client and oauth4webapi's
 * response processing, with the network faked: every AADSTS code of the table, by
 * `error_description` and by `error_codes`, plus the answers that are not OAuth error bodies.
 * The expected kinds are written out here, not imported, so a code dropped from (or moved
 * within) the table fails its row.
 */
import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { classifyTokenError, type FailureKind, ProviderError } from '../../src/oauth/errors.js';
import { OAuthClient } from '../../src/oauth/oauth-client.js';

const issuer = 'https://login.example.test/tenant/v2.0';
const now = Date.parse('2026-01-01T00:00:00Z');

/** An OAuth client whose token endpoint answers `answer()` for every request. */
function clientAnswering(answer: () => Response): OAuthClient {
  return new OAuthClient({
    providerId: 'p',
    as: { issuer, token_endpoint: `${issuer}/token` },
    client: { client_id: 'nunq' },
    clientAuth: oauth.ClientSecretPost('client-secret-value'),
    fetch: async () => answer(),
    allowHttp: false,
    clock: { now: () => now },
    accountFromClaims: () => ({}),
  });
}

/** The ProviderError a refresh ends in when the token endpoint answers `answer()`. */
async function refreshFailure(answer: () => Response): Promise<ProviderError> {
  const error = await clientAnswering(answer)
    .refresh('a-refresh-token', ['openid'])
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });

/**
 * Every AADSTS code the classifier knows, with the kind it must give. The OAuth `error` each row
 * is sent with is one that, without the code, would classify differently: a dropped code fails.
 */
const aadsts: Array<[number, FailureKind]> = [
  ...[50173, 50076, 50079, 50078, 50158, 65001, 70008, 700082, 70043, 700084, 50132, 50133, 54005, 70000].map(
    (c) => [c, 'reauth_required'] as [number, FailureKind],
  ),
  ...[7000215, 7000222, 700016, 7000218, 90002, 700054, 50011, 50194, 900971, 500011, 90094].map(
    (c) => [c, 'config_error'] as [number, FailureKind],
  ),
  ...[50196, 90033, 80001, 80002, 80005, 90006].map((c) => [c, 'transient'] as [number, FailureKind]),
];

/** An OAuth error that, on its own, classifies as something other than `kind`. */
const errorOtherThan = (kind: FailureKind) => (kind === 'transient' ? 'invalid_grant' : 'invalid_request');

describe('the AADSTS table', () => {
  it.each(aadsts)('AADSTS%i in error_description is %s', async (code, kind) => {
    const failure = await refreshFailure(
      json(400, {
        error: errorOtherThan(kind),
        error_description: `AADSTS${code}: something Entra says. Trace ID: 0000 Correlation ID: 1111`,
        error_codes: [],
      }),
    );
    expect(failure.kind).toBe(kind);
    expect(failure.providerError).toBe(errorOtherThan(kind));
    expect(failure.status).toBe(400);
  });

  it.each(aadsts)('AADSTS%i in error_codes alone is %s', async (code, kind) => {
    const failure = await refreshFailure(
      json(400, {
        error: errorOtherThan(kind),
        error_description: 'no code in this text',
        error_codes: [code],
      }),
    );
    expect(failure.kind).toBe(kind);
  });

  it('lets throttling win over every other code in the same answer', async () => {
    const failure = await refreshFailure(
      json(400, { error: 'invalid_grant', error_description: 'AADSTS70008: expired', error_codes: [50196] }),
    );
    expect(failure.kind).toBe('transient');
  });

  it('falls back to the OAuth error for an AADSTS code it does not know', async () => {
    const failure = await refreshFailure(
      json(400, { error: 'invalid_grant', error_description: 'AADSTS9002313: Invalid request.' }),
    );
    expect(failure.kind).toBe('reauth_required');
  });
});

describe('answers that are not an AADSTS error', () => {
  it.each([
    ['invalid_grant', 400, 'reauth_required'],
    ['interaction_required', 400, 'reauth_required'],
    ['consent_required', 400, 'reauth_required'],
    ['login_required', 400, 'reauth_required'],
    ['account_selection_required', 400, 'reauth_required'],
    ['invalid_client', 400, 'config_error'],
    ['unauthorized_client', 400, 'config_error'],
    ['unsupported_grant_type', 400, 'config_error'],
    ['invalid_scope', 400, 'invalid_request'],
    ['temporarily_unavailable', 400, 'transient'],
    ['server_error', 400, 'transient'],
    ['invalid_grant', 503, 'transient'],
    ['invalid_grant', 429, 'transient'],
  ] as const)('OAuth error %s with HTTP %i is %s', async (error, status, kind) => {
    expect((await refreshFailure(json(status, { error }))).kind).toBe(kind);
  });

  it.each([502, 503, 504, 500])('a non-JSON HTTP %i is transient, with its status', async (status) => {
    const failure = await refreshFailure(
      () =>
        new Response('<html>Service Unavailable</html>', {
          status,
          headers: { 'content-type': 'text/html' },
        }),
    );
    expect(failure).toMatchObject({ kind: 'transient', status });
    expect(failure.message).not.toContain('Service Unavailable');
  });

  it('a non-JSON 429 with Retry-After in seconds is transient and keeps the delay', async () => {
    const failure = await refreshFailure(
      () => new Response('slow down', { status: 429, headers: { 'retry-after': '120' } }),
    );
    expect(failure).toMatchObject({ kind: 'transient', status: 429, retryAfterMs: 120_000 });
  });

  it('a non-JSON 503 with Retry-After as an HTTP date is transient and keeps the delay', async () => {
    const at = new Date(now + 45_000).toUTCString();
    const failure = await refreshFailure(
      () => new Response('maintenance', { status: 503, headers: { 'retry-after': at } }),
    );
    expect(failure).toMatchObject({ kind: 'transient', status: 503, retryAfterMs: 45_000 });
  });

  it('a JSON 429 with Retry-After keeps the delay too', async () => {
    const failure = await refreshFailure(json(429, { error: 'slow_down' }, { 'retry-after': '7' }));
    expect(failure).toMatchObject({ kind: 'transient', status: 429, retryAfterMs: 7_000 });
  });

  it.each([401, 403])(
    'a %i with WWW-Authenticate and no OAuth body is the client being rejected (config_error)',
    async (status) => {
      const failure = await refreshFailure(
        () => new Response(null, { status, headers: { 'www-authenticate': 'Basic realm="token"' } }),
      );
      expect(failure).toMatchObject({ kind: 'config_error', status });
    },
  );

  it('a 200 without an access token is the provider misbehaving (transient)', async () => {
    const failure = await refreshFailure(json(200, { token_type: 'Bearer' }));
    expect(failure.kind).toBe('transient');
  });

  it('a network error is transient', async () => {
    const failure = await refreshFailure(() => {
      throw new TypeError('fetch failed');
    });
    expect(failure.kind).toBe('transient');
    expect(classifyTokenError(new Error('ECONNRESET')).kind).toBe('transient');
  });
});
