/**
 * The lifetime a token response gives (`expires_in`), as the stored expiry: whole milliseconds,
 * and never past what a bigint column holds, however absurd the provider's number (oauth4webapi
 * passes any finite non-negative one). A refresh answer goes through the real OAuthClient and
 * oauth4webapi; only the token endpoint is faked.
 */
import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { OAuthClient } from '../../src/oauth/oauth-client.js';

const issuer = 'https://login.example.test';
const now = Date.parse('2026-01-01T00:00:00Z');
const tenYearsMs = 10 * 365 * 24 * 3600 * 1000;

async function expiryAfterRefresh(expiresIn: unknown): Promise<number | null> {
  const client = new OAuthClient({
    providerId: 'p',
    as: { issuer, token_endpoint: `${issuer}/token` },
    client: { client_id: 'nunq' },
    clientAuth: oauth.ClientSecretPost('client-secret-value'),
    fetch: async () =>
      new Response(
        JSON.stringify({
          access_token: 'at',
          token_type: 'Bearer',
          refresh_token: 'rt2',
          expires_in: expiresIn,
        }),
        { status: 200, headers: { 'content-type': 'application/json' } },
      ),
    allowHttp: false,
    clock: { now: () => now },
    accountFromClaims: () => ({}),
  });
  return (await client.refresh('rt', [])).expiresAt;
}

describe('a token response lifetime as the stored expiry', () => {
  it.each([
    ['an hour', 3600, now + 3_600_000],
    ['zero (already expired)', 0, now],
    ['a fraction of a millisecond', 3599.9999, now + 3_600_000],
    ['a string, as some providers send it', '3600', now + 3_600_000],
    ['ten years and more', 1e17, now + tenYearsMs],
    ['the largest finite number', Number.MAX_VALUE, now + tenYearsMs],
  ])('%s', async (_what, expiresIn, expected) => {
    const expiresAt = await expiryAfterRefresh(expiresIn);
    expect(expiresAt).toBe(expected);
    expect(Number.isSafeInteger(expiresAt)).toBe(true);
  });

  it('no expires_in: no expiry', async () => {
    expect(await expiryAfterRefresh(undefined)).toBeNull();
  });
});
