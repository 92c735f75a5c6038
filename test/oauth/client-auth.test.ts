import { describe, expect, it } from 'vitest';
import { clientSecretBasic } from '../../src/oauth/client-auth.js';

/** The Basic credentials a token endpoint receives, decoded from base64 but not form-decoded. */
async function basicOf(clientId: string, secret: string): Promise<string> {
  const headers = new Headers();
  await clientSecretBasic(secret)(
    { issuer: 'https://as.example' },
    { client_id: clientId },
    new URLSearchParams(),
    headers,
  );
  const value = headers.get('authorization') ?? '';
  expect(value).toMatch(/^Basic [A-Za-z0-9+/=]+$/);
  return Buffer.from(value.slice('Basic '.length), 'base64').toString('utf8');
}

describe('client_secret_basic', () => {
  it('leaves unreserved characters as they are, so servers that do not form-decode still match', async () => {
    expect(await basicOf('pre-registered-client', 'pre-registered-secret')).toBe(
      'pre-registered-client:pre-registered-secret',
    );
    expect(await basicOf('a.b_c*d', 'x')).toBe('a.b_c*d:x');
  });

  it('form-urlencodes everything else (RFC 6749 §2.3.1): a colon in the id cannot split it', async () => {
    const raw = await basicOf('id:with space', 's/e:c%r+t');
    expect(raw).toBe('id%3Awith+space:s%2Fe%3Ac%25r%2Bt');
    const [id, secret] = raw.split(':').map((part) => new URLSearchParams(`v=${part}`).get('v'));
    expect(id).toBe('id:with space');
    expect(secret).toBe('s/e:c%r+t');
  });
});
