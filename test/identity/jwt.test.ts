import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { isAdmin, userIdPattern } from '../../src/identity/identity.js';
import { createJwtVerifier, mintToken, TokenRejectedError } from '../../src/identity/jwt.js';

const secret = 'identity-test-secret-of-at-least-32-chars';
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Resolves to the rejection of `promise`, failing the test when it resolves instead. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('mintToken', () => {
  it('signs HS256 with sub, name, role, iat and exp', async () => {
    const token = await mintToken(
      secret,
      { sub: 'alice', name: 'Alice', role: 'admin' },
      { expiresIn: '1h' },
    );
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'alice', name: 'Alice', role: 'admin' });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(Math.abs(claims.iat! - now())).toBeLessThanOrEqual(2);
  });

  it('leaves out name and role when not given, and defaults to 12 hours', async () => {
    const claims = decodeJwt(await mintToken(secret, { sub: 'bob' }));
    expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'sub']);
    expect(claims.exp! - claims.iat!).toBe(12 * 3600);
  });
});

describe('createJwtVerifier (HS256)', () => {
  const verify = createJwtVerifier({ secret });

  it('reads groups from the configured claim: a list of strings or one string, anything else none', async () => {
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('gina')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(secret));
    expect((await verify(await sign({ groups: ['a', 'b', 7, ''] }))).groups).toEqual(['a', 'b']);
    expect((await verify(await sign({ groups: 'solo' }))).groups).toEqual(['solo']);
    expect((await verify(await sign({ groups: { a: 1 } }))).groups).toEqual([]);
    const byRoles = createJwtVerifier({ secret }, 30, 'roles');
    expect((await byRoles(await sign({ roles: ['finance'], groups: ['other'] }))).groups).toEqual([
      'finance',
    ]);
  });

  it('accepts a valid token and returns its claims', async () => {
    const token = await mintToken(secret, { sub: 'alice', name: 'Alice', role: 'admin' });
    expect(await verify(token)).toEqual({
      sub: 'alice',
      name: 'Alice',
      role: 'admin',
      groups: [],
      iss: null,
      jti: null,
      exp: expect.any(Number),
    });
    expect(
      await verify(await mintToken(secret, { sub: 'bob' }, { jti: 'hand-off-1', issuer: 'platform' })),
    ).toEqual({
      sub: 'bob',
      name: null,
      role: null,
      groups: [],
      iss: 'platform',
      jti: 'hand-off-1',
      exp: expect.any(Number),
    });
  });

  it('rejects an expired token (beyond the 30 s clock tolerance)', async () => {
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt(now() - 7200)
      .setExpirationTime(now() - 60)
      .sign(key);
    expect(await rejectionOf(verify(expired))).toBeInstanceOf(TokenRejectedError);
    // Within the tolerance it still passes, so the check above is about expiry and nothing else.
    const justExpired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(now() - 5)
      .sign(key);
    expect((await verify(justExpired)).sub).toBe('alice');
  });

  it('rejects a token signed with another secret', async () => {
    const forged = await mintToken('another-secret-that-is-32-characters-long', { sub: 'alice' });
    const error = await rejectionOf(verify(forged));
    expect(error).toBeInstanceOf(TokenRejectedError);
    expect((error as TokenRejectedError).code).toBe('token_rejected');
  });

  it('rejects alg "none" and other algorithms than HS256', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', exp: now() + 600 })}.`;
    expect(await rejectionOf(verify(unsigned))).toBeInstanceOf(TokenRejectedError);
    const hs512 = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret.repeat(2)));
    expect(await rejectionOf(createJwtVerifier({ secret: secret.repeat(2) })(hs512))).toBeInstanceOf(
      TokenRejectedError,
    );
  });

  it('rejects a token without a usable sub', async () => {
    const noSub = await new SignJWT({ name: 'Nobody' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(key);
    expect(await rejectionOf(verify(noSub))).toBeInstanceOf(TokenRejectedError);
    for (const sub of ['', 'has space', 'a/b', 'x'.repeat(201)]) {
      const bad = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setExpirationTime('1h')
        .sign(key);
      expect(await rejectionOf(verify(bad)), sub).toBeInstanceOf(TokenRejectedError);
    }
  });

  it('rejects garbage', async () => {
    for (const token of ['', 'abc', 'a.b.c', `${b64url({ alg: 'HS256' })}.not-json.sig`]) {
      expect(await rejectionOf(verify(token)), token).toBeInstanceOf(TokenRejectedError);
    }
  });

  it('checks issuer and audience when configured', async () => {
    const strict = createJwtVerifier({ secret, issuer: 'https://platform.example', audience: 'nunq' });
    const good = await mintToken(
      secret,
      { sub: 'alice' },
      { issuer: 'https://platform.example', audience: 'nunq' },
    );
    expect((await strict(good)).sub).toBe('alice');
    const wrongIssuer = await mintToken(
      secret,
      { sub: 'alice' },
      { issuer: 'https://evil', audience: 'nunq' },
    );
    expect(await rejectionOf(strict(wrongIssuer))).toBeInstanceOf(TokenRejectedError);
    const wrongAudience = await mintToken(
      secret,
      { sub: 'alice' },
      { issuer: 'https://platform.example', audience: 'other' },
    );
    expect(await rejectionOf(strict(wrongAudience))).toBeInstanceOf(TokenRejectedError);
    const neither = await mintToken(secret, { sub: 'alice' });
    expect(await rejectionOf(strict(neither))).toBeInstanceOf(TokenRejectedError);
  });

  it('caps a long name claim and ignores non-string name and role', async () => {
    const token = await new SignJWT({ name: 'n'.repeat(500), role: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(key);
    const claims = await verify(token);
    expect(claims.name).toHaveLength(200);
    expect(claims.role).toBeNull();
  });
});

describe('isAdmin and user ids', () => {
  it('grants admin by the role claim or by auth.admins, nothing else', () => {
    expect(isAdmin('alice', 'admin', [])).toBe(true);
    expect(isAdmin('alice', null, ['alice'])).toBe(true);
    expect(isAdmin('alice', 'Admin', [])).toBe(false);
    expect(isAdmin('alice', ['admin'], [])).toBe(false);
    expect(isAdmin('alice', 'user', ['bob'])).toBe(false);
  });

  it('accepts platform-style ids and refuses unsafe ones', () => {
    for (const id of ['alice', 'u-123', 'a.b@example.com', 'auth0|abc', 'tenant:user+1'])
      expect(userIdPattern.test(id), id).toBe(true);
    for (const id of ['', 'a b', 'a/b', 'a\nb', '<x>', 'x'.repeat(201)])
      expect(userIdPattern.test(id), id).toBe(false);
  });
});
