/**
 * Regressions (issue 8, security 1 and bad input 6) for the platform's sign-in hand-off,
 * `GET /session?token=JWT`: a JWT with a `jti` is accepted once only (across instances sharing
 * the database, and of concurrent uses exactly one wins); a session of another user is never
 * replaced without asking; a bad token is called a bad token, not a bad Authorization header.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import { UsedHandOffRepository } from '../../src/store/repos/used-hand-offs.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService, testJwtSecret } from '../support/service.js';

/** A platform JWT for `sub`, with a fresh `jti` unless `jti: null`. */
const handOffToken = (sub: string, jti: string | null = randomUUID(), name?: string) =>
  mintToken(
    testJwtSecret,
    { sub, ...(name ? { name } : {}) },
    {
      expiresIn: '5m',
      ...(jti === null ? {} : { jti }),
    },
  );

describe.each(databaseKinds)('the /session hand-off on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;
  let other: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({ database });
    other = await startTestService({ database });
  });
  afterAll(async () => {
    await other?.close();
    await svc?.close();
    await database?.drop();
  });

  const session = (base: string, token: string, headers: Record<string, string> = {}, returnTo = '/') =>
    fetch(`${base}/session?token=${encodeURIComponent(token)}&return_to=${encodeURIComponent(returnTo)}`, {
      headers,
      redirect: 'manual',
    });
  const cookieOf = (res: Response) => res.headers.getSetCookie()[0]?.split(';')[0];
  const whoIs = async (cookie: string) => {
    const r = await fetch(`${svc.url}/api/v1/me`, { headers: { cookie } });
    return r.status === 200 ? ((await r.json()) as { id: string; csrfToken: string }) : r.status;
  };
  async function expectRefused(res: Response, code: string, detail: RegExp): Promise<void> {
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.getSetCookie()).toEqual([]);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe(code);
    expect(body.detail).toMatch(detail);
  }

  describe('a token with a jti', () => {
    it('is accepted once; the second use is refused with a clear problem and no cookie', async () => {
      const token = await handOffToken('jti-once');
      const first = await session(svc.url, token);
      expect(first.status).toBe(302);
      expect(await whoIs(cookieOf(first)!)).toMatchObject({ id: 'jti-once' });
      await expectRefused(await session(svc.url, token), 'hand_off_used', /already used/);
    });

    it('is refused on another instance sharing the database after one use', async () => {
      const token = await handOffToken('jti-two-instances');
      expect((await session(svc.url, token)).status).toBe(302);
      await expectRefused(await session(other.url, token), 'hand_off_used', /already used/);
    });

    it('wins exactly once when used concurrently on two instances', async () => {
      const token = await handOffToken('jti-race');
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => session(i % 2 === 0 ? svc.url : other.url, token)),
      );
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([302, ...Array(9).fill(401)]);
      expect(answers.filter((r) => r.headers.getSetCookie().length > 0)).toHaveLength(1);
      const rows = await svc.service.ctx.store.db.selectFrom('used_hand_offs').selectAll().execute();
      expect(rows.length).toBeGreaterThanOrEqual(1);
    });

    it('keeps working as an API bearer, before and after its use at /session', async () => {
      const token = await handOffToken('jti-bearer');
      const me = () => fetch(`${svc.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      expect((await me()).status).toBe(200);
      expect((await session(svc.url, token)).status).toBe(302);
      expect((await me()).status).toBe(200);
      expect((await me()).status).toBe(200);
    });

    it('is remembered until the token expires, then pruned', async () => {
      const repo = new UsedHandOffRepository(svc.service.ctx.store.db);
      const token = await handOffToken('jti-prune');
      expect((await session(svc.url, token)).status).toBe(302);
      const count = async () =>
        Number(
          (
            await svc.service.ctx.store.db
              .selectFrom('used_hand_offs')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const before = await count();
      await repo.deleteExpired(Date.now());
      expect(await count()).toBe(before); // nothing here has expired yet
      await repo.deleteExpired(Date.now() + 5 * 60_000 + 61_000);
      expect(await count()).toBe(0);
    });
  });

  it('a token without a jti keeps working at /session, again and again', async () => {
    const token = await handOffToken('plain', null);
    for (let i = 0; i < 3; i += 1) expect((await session(svc.url, token)).status).toBe(302);
  });

  describe('with a session of another user in the browser', () => {
    it('asks first and changes nothing; Continue (a POST with the CSRF token) switches', async () => {
      const alice = cookieOf(await session(svc.url, await handOffToken('alice', null, 'Alice A')))!;
      const bobToken = await handOffToken('bob', randomUUID(), 'Bob B');
      const ask = await session(svc.url, bobToken, { cookie: alice }, '/connect/x');
      expect(ask.status).toBe(200);
      expect(ask.headers.get('content-type')).toMatch(/^text\/html/);
      expect(ask.headers.getSetCookie()).toEqual([]);
      expect(ask.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const page = await ask.text();
      expect(page).toContain('You are signed in as <strong>Alice A</strong> (<code>alice</code>)');
      expect(page).toContain('<strong>Bob B</strong> (<code>bob</code>)');
      expect(await whoIs(alice)).toMatchObject({ id: 'alice' });

      const form = (fields: Record<string, string>) =>
        fetch(`${svc.url}/session`, {
          method: 'POST',
          headers: { cookie: alice, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(fields),
          redirect: 'manual',
        });
      // Without the session's CSRF token (what a cross-site form could send): refused.
      const forged = await form({ token: bobToken, return_to: '/connect/x' });
      expect(forged.status).toBe(403);
      expect(await whoIs(alice)).toMatchObject({ id: 'alice' });

      const { csrfToken } = (await whoIs(alice)) as { csrfToken: string };
      const switched = await form({ token: bobToken, return_to: '/connect/x', _csrf: csrfToken });
      expect(switched.status).toBe(303);
      expect(switched.headers.get('location')).toBe('/connect/x');
      expect(await whoIs(cookieOf(switched)!)).toMatchObject({ id: 'bob' });
      expect(await whoIs(alice)).toBe(401); // the old session ended
      // The switch used the jti: the link cannot be replayed.
      await expectRefused(await session(svc.url, bobToken), 'hand_off_used', /already used/);
      // The token travelled in a query and a form: neither reaches a log line.
      expect(svc.logs.join('\n')).not.toContain(bobToken.split('.')[2]);
    });

    it('answers an already used link with the problem instead of asking', async () => {
      const alice = cookieOf(await session(svc.url, await handOffToken('alice2', null)))!;
      const used = await handOffToken('bob2');
      expect((await session(svc.url, used)).status).toBe(302);
      await expectRefused(await session(svc.url, used, { cookie: alice }), 'hand_off_used', /already used/);
    });
  });

  it('with a session of the same user, keeps it and redirects', async () => {
    const first = cookieOf(await session(svc.url, await handOffToken('same', null)))!;
    const again = await session(svc.url, await handOffToken('same'), { cookie: first }, '/x');
    expect(again.status).toBe(302);
    expect(again.headers.get('location')).toBe('/x');
    expect(again.headers.getSetCookie()).toEqual([]);
    expect(await whoIs(first)).toMatchObject({ id: 'same' });
  });

  it.each([['garbage'], ['not a jwt!'], ['a.b.c'], ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']])(
    'calls %j an invalid or expired sign-in token, not an Authorization header',
    async (token) => {
      const res = await session(svc.url, token);
      await expectRefused(res, 'unauthenticated', /sign-in token is invalid or expired/);
      const text = JSON.stringify(await (await session(svc.url, token)).json());
      expect(text).not.toMatch(/authorization|bearer/i);
    },
  );

  it('refuses a token whose jti is not a string', async () => {
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ jti: 42 } as never)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('odd-jti')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(testJwtSecret));
    await expectRefused(await session(svc.url, token), 'unauthenticated', /invalid or expired/);
  });
});
