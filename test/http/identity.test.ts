import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService, testJwtSecret } from '../support/service.js';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

/** Asserts an RFC 9457 problem response with the given status and code; returns its body. */
async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, title: expect.any(String), type: expect.any(String) });
  return body;
}

describe.each(databaseKinds)('identity over HTTP on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({ database, admins: ['boss'] });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${svc.url}${path}`, { headers, redirect: 'manual' });
  const me = (authorization: string) => get('/api/v1/me', { authorization });

  /** Exchanges a JWT at /session; returns the `name=value` of the session cookie. */
  async function sessionCookie(userId: string, role?: 'admin'): Promise<string> {
    const res = await get(`/session?token=${await svc.token(userId, role)}&return_to=/`);
    expect(res.status).toBe(302);
    const [setCookie] = res.headers.getSetCookie();
    expect(setCookie).toBeDefined();
    return setCookie!.split(';')[0]!;
  }

  async function csrfTokenOf(cookie: string): Promise<string> {
    const res = await get('/api/v1/me', { cookie });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { csrfToken?: string };
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    return body.csrfToken!;
  }

  const post = (path: string, headers: Record<string, string>, body: unknown = { integration: 'nope' }) =>
    fetch(`${svc.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      redirect: 'manual',
    });

  describe('bearer JWT', () => {
    it('identifies a valid token at GET /api/v1/me', async () => {
      const res = await me(`Bearer ${await svc.token('alice')}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ id: 'alice', name: null, role: 'user' });
    });

    it('passes the name claim through', async () => {
      const token = await mintToken(testJwtSecret, { sub: 'named', name: 'Named User' });
      expect(await (await me(`Bearer ${token}`)).json()).toMatchObject({ id: 'named', name: 'Named User' });
    });

    it('refuses an expired token', async () => {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setIssuedAt(nowSec() - 7200)
        .setExpirationTime(nowSec() - 3600)
        .sign(new TextEncoder().encode(testJwtSecret));
      await expectProblem(await me(`Bearer ${token}`), 401, 'unauthenticated');
    });

    it('refuses a token signed with another secret', async () => {
      const token = await mintToken('not-the-service-secret-but-32-chars-long', { sub: 'alice' });
      await expectProblem(await me(`Bearer ${token}`), 401, 'unauthenticated');
    });

    it('refuses alg "none"', async () => {
      const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', exp: nowSec() + 600 })}.`;
      await expectProblem(await me(`Bearer ${token}`), 401, 'unauthenticated');
    });

    it('refuses a token without sub', async () => {
      const token = await new SignJWT({ name: 'x' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(testJwtSecret));
      await expectProblem(await me(`Bearer ${token}`), 401, 'unauthenticated');
    });

    it('refuses malformed Authorization headers', async () => {
      const valid = await svc.token('alice');
      for (const header of [
        'Bearer',
        'Bearer ',
        `bearer${valid}`,
        `Basic ${Buffer.from('alice:pw').toString('base64')}`,
        `Bearer ${valid} extra`,
        'Bearer not a token',
        'Bearer abc',
        `Token ${valid}`,
      ]) {
        const body = await expectProblem(await me(header), 401, 'unauthenticated');
        expect(JSON.stringify(body)).not.toContain(valid);
      }
    });

    it('accepts the auth scheme in any letter case (RFC 9110 §11.1)', async () => {
      const token = await svc.token('alice');
      for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
        const res = await me(`${scheme} ${token}`);
        expect({ scheme, status: res.status }).toEqual({ scheme, status: 200 });
      }
    });

    it('answers 401 without any credentials', async () => {
      await expectProblem(await get('/api/v1/me'), 401, 'unauthenticated');
    });

    it('makes an admin by the role claim and by auth.admins', async () => {
      expect(await (await me(`Bearer ${await svc.token('carol', 'admin')}`)).json()).toMatchObject({
        id: 'carol',
        role: 'admin',
      });
      expect(await (await me(`Bearer ${await svc.token('boss')}`)).json()).toMatchObject({
        id: 'boss',
        role: 'admin',
      });
      const notAdmin = await mintToken(testJwtSecret, { sub: 'dave', role: 'superuser' });
      expect(await (await me(`Bearer ${notAdmin}`)).json()).toMatchObject({ role: 'user' });
    });
  });

  describe('GET /session', () => {
    it('sets an HttpOnly SameSite=Lax cookie (not Secure on http) and redirects to return_to', async () => {
      const res = await get(
        `/session?token=${await svc.token('alice')}&return_to=${encodeURIComponent('/x?a=1')}`,
      );
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/x?a=1');
      const cookies = res.headers.getSetCookie();
      expect(cookies).toHaveLength(1);
      const attributes = cookies[0]!.split(';').map((a) => a.trim().toLowerCase());
      expect(cookies[0]).toMatch(/^nunq_session=[A-Za-z0-9_-]{43};/);
      expect(attributes).toContain('httponly');
      expect(attributes).toContain('samesite=lax');
      expect(attributes).toContain('path=/');
      expect(attributes).toContain(`max-age=${svc.config.auth.sessionTtlSeconds}`);
      expect(attributes).not.toContain('secure');
      // The cookie is a session, not the JWT.
      const cookie = cookies[0]!.split(';')[0]!;
      const whoami = await get('/api/v1/me', { cookie });
      expect(whoami.status).toBe(200);
      expect(await whoami.json()).toMatchObject({ id: 'alice', role: 'user' });
    });

    it('redirects to / without return_to and keeps the admin role', async () => {
      const res = await get(`/session?token=${await svc.token('carol', 'admin')}`);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/');
      const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
      expect(await (await get('/api/v1/me', { cookie })).json()).toMatchObject({
        id: 'carol',
        role: 'admin',
      });
    });

    it('refuses an off-origin return_to with 400 and sets no cookie', async () => {
      const token = await svc.token('alice');
      for (const target of [
        'https://evil.example/',
        '//evil.example',
        '/\\evil.example',
        '\\\\evil.example',
        'javascript:alert(1)',
        '/x\r\nSet-Cookie: a=b',
        'evil.example',
      ]) {
        const res = await get(`/session?token=${token}&return_to=${encodeURIComponent(target)}`);
        await expectProblem(res, 400, 'return_to_invalid');
        expect(res.headers.getSetCookie(), target).toEqual([]);
        expect(res.headers.get('location')).toBeNull();
      }
    });

    it('never redirects off-site through dot segments that normalise to //host', async () => {
      const token = await svc.token('alice');
      for (const target of [
        '/.//evil.example/x',
        '/..//evil.example',
        '/a/..//evil.example',
        '/%2e//evil.example',
      ]) {
        const res = await get(`/session?token=${token}&return_to=${encodeURIComponent(target)}`);
        const location = res.headers.get('location');
        expect([302, 400], target).toContain(res.status);
        if (res.status === 400) continue;
        // Followed by a browser, the redirect must stay on this site.
        expect(location?.startsWith('//'), `${target} -> ${location}`).toBe(false);
        expect(new URL(location!, svc.url).origin, `${target} -> ${location}`).toBe(svc.url);
      }
    });

    it('refuses a bad token with 401 and sets no cookie', async () => {
      const forged = await mintToken('not-the-service-secret-but-32-chars-long', { sub: 'alice' });
      for (const token of [forged, 'garbage', `${b64url({ alg: 'none' })}.${b64url({ sub: 'alice' })}.`]) {
        const res = await get(`/session?token=${encodeURIComponent(token)}&return_to=/`);
        await expectProblem(res, 401, 'unauthenticated');
        expect(res.headers.getSetCookie()).toEqual([]);
      }
    });

    it('refuses a missing token with 400', async () => {
      const res = await get('/session?return_to=/');
      await expectProblem(res, 400, 'validation_failed');
      expect(res.headers.getSetCookie()).toEqual([]);
    });

    it('ignores a forged or unknown session cookie', async () => {
      await expectProblem(
        await get('/api/v1/me', { cookie: `nunq_session=${'A'.repeat(43)}` }),
        401,
        'unauthenticated',
      );
    });

    it('logs out: the cookie is cleared and no longer accepted', async () => {
      const cookie = await sessionCookie('leaver');
      const csrf = await csrfTokenOf(cookie);
      const res = await fetch(`${svc.url}/logout`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrf },
        redirect: 'manual',
      });
      expect(res.status).toBe(303);
      expect(res.headers.getSetCookie().join()).toMatch(/^nunq_session=;/);
      await expectProblem(await get('/api/v1/me', { cookie }), 401, 'unauthenticated');
    });
  });

  describe('CSRF', () => {
    it('exposes the CSRF token to session users only', async () => {
      const cookie = await sessionCookie('alice');
      expect(await csrfTokenOf(cookie)).toBeTruthy();
      const bearer = await (await me(`Bearer ${await svc.token('alice')}`)).json();
      expect(bearer).not.toHaveProperty('csrfToken');
    });

    it('refuses a cookie-authenticated POST without the token, or with a wrong one', async () => {
      const cookie = await sessionCookie('alice');
      const csrf = await csrfTokenOf(cookie);
      await expectProblem(await post('/api/v1/connections', { cookie }), 403, 'csrf_failed');
      await expectProblem(
        await post('/api/v1/connections', { cookie, 'x-csrf-token': `${csrf.slice(0, -1)}x` }),
        403,
        'csrf_failed',
      );
      await expectProblem(
        await post('/api/v1/connections', { cookie, 'x-csrf-token': '' }),
        403,
        'csrf_failed',
      );
      const del = await fetch(`${svc.url}/api/v1/connections/${randomUUID()}`, {
        method: 'DELETE',
        headers: { cookie },
      });
      await expectProblem(del, 403, 'csrf_failed');
    });

    it("refuses another session's token", async () => {
      const alice = await sessionCookie('alice');
      const bob = await sessionCookie('bob');
      const bobsToken = await csrfTokenOf(bob);
      await expectProblem(
        await post('/api/v1/connections', { cookie: alice, 'x-csrf-token': bobsToken }),
        403,
        'csrf_failed',
      );
    });

    it('lets a POST with the session token past the CSRF check', async () => {
      const cookie = await sessionCookie('alice');
      const csrf = await csrfTokenOf(cookie);
      const res = await post('/api/v1/connections', { cookie, 'x-csrf-token': csrf });
      expect(res.status).not.toBe(403);
      // No such integration: refused for that reason, after the CSRF check.
      await expectProblem(res, 404, 'integration_not_found');
      const sameOrigin = await post('/api/v1/connections', { cookie, 'x-csrf-token': csrf, origin: svc.url });
      await expectProblem(sameOrigin, 404, 'integration_not_found');
    });

    it('accepts the token as the _csrf form field of a form post', async () => {
      const cookie = await sessionCookie('alice');
      const csrf = await csrfTokenOf(cookie);
      const form = (fields: Record<string, string>) =>
        fetch(`${svc.url}/connections/${randomUUID()}/disconnect`, {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(fields),
          redirect: 'manual',
        });
      await expectProblem(await form({}), 403, 'csrf_failed');
      await expectProblem(await form({ _csrf: 'wrong' }), 403, 'csrf_failed');
      await expectProblem(await form({ _csrf: csrf }), 404, 'connection_not_found');
    });

    it('refuses a cross-origin Origin even with the right token', async () => {
      const cookie = await sessionCookie('alice');
      const csrf = await csrfTokenOf(cookie);
      for (const origin of ['https://evil.example', 'null', svc.url.replace('127.0.0.1', 'localhost')]) {
        await expectProblem(
          await post('/api/v1/connections', { cookie, 'x-csrf-token': csrf, origin }),
          403,
          'csrf_failed',
        );
      }
    });

    it('asks nothing of bearer-authenticated POSTs', async () => {
      const authorization = `Bearer ${await svc.token('alice')}`;
      await expectProblem(await post('/api/v1/connections', { authorization }), 404, 'integration_not_found');
      await expectProblem(
        await post('/api/v1/connections', { authorization, origin: 'https://elsewhere.example' }),
        404,
        'integration_not_found',
      );
    });

    it('does not apply to safe methods', async () => {
      const cookie = await sessionCookie('alice');
      const res = await get('/api/v1/integrations', { cookie, origin: 'https://evil.example' });
      expect(res.status).toBe(200);
    });
  });

  describe("users never see each other's connections", () => {
    let connectionId: string;

    beforeAll(async () => {
      connectionId = randomUUID();
      const now = Date.now();
      await svc.service.ctx.store.db
        .insertInto('connections')
        .values({
          id: connectionId,
          user_id: 'owner',
          integration_id: 'items',
          status: 'active',
          scopes: '["read"]',
          refresh_failures: 0,
          version: 0,
          created_at: now,
          updated_at: now,
        })
        .execute();
    });

    const exists = async () =>
      (await svc.service.ctx.store.db
        .selectFrom('connections')
        .select('id')
        .where('id', '=', connectionId)
        .executeTakeFirst()) !== undefined;

    it('shows the owner the connection', async () => {
      const res = await svc.api('owner', `/api/v1/connections/${connectionId}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: connectionId, integration: 'items', status: 'active' });
      const list = (await (await svc.api('owner', '/api/v1/connections')).json()) as Array<{ id: string }>;
      expect(list.map((c) => c.id)).toEqual([connectionId]);
    });

    it('answers 404 to another user (bearer) for GET, DELETE and reconnect, and lists nothing', async () => {
      await expectProblem(
        await svc.api('intruder', `/api/v1/connections/${connectionId}`),
        404,
        'connection_not_found',
      );
      await expectProblem(
        await svc.api('intruder', `/api/v1/connections/${connectionId}`, { method: 'DELETE' }),
        404,
        'connection_not_found',
      );
      await expectProblem(
        await svc.api('intruder', `/api/v1/connections/${connectionId}/reconnect`, { method: 'POST' }),
        404,
        'connection_not_found',
      );
      expect(await (await svc.api('intruder', '/api/v1/connections')).json()).toEqual([]);
      const integrations = await (await svc.api('intruder', '/api/v1/integrations')).json();
      expect(JSON.stringify(integrations)).not.toContain(connectionId);
      expect(await exists()).toBe(true);
    });

    it('answers 404 to another user (session) for GET and DELETE', async () => {
      const cookie = await sessionCookie('intruder');
      const csrf = await csrfTokenOf(cookie);
      await expectProblem(
        await get(`/api/v1/connections/${connectionId}`, { cookie }),
        404,
        'connection_not_found',
      );
      const del = await fetch(`${svc.url}/api/v1/connections/${connectionId}`, {
        method: 'DELETE',
        headers: { cookie, 'x-csrf-token': csrf },
      });
      await expectProblem(del, 404, 'connection_not_found');
      const form = await fetch(`${svc.url}/connections/${connectionId}/disconnect`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf }),
        redirect: 'manual',
      });
      await expectProblem(form, 404, 'connection_not_found');
      expect(await exists()).toBe(true);
    });

    it('answers an admin the same 404 for a connection that is not theirs', async () => {
      await expectProblem(
        await svc.api('boss', `/api/v1/connections/${connectionId}`),
        404,
        'connection_not_found',
      );
    });

    it('lets the owner delete it; afterwards it is gone for the owner too', async () => {
      const del = await svc.api('owner', `/api/v1/connections/${connectionId}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      expect(await exists()).toBe(false);
      await expectProblem(
        await svc.api('owner', `/api/v1/connections/${connectionId}`),
        404,
        'connection_not_found',
      );
    });

    it('answers 404 for an id that is not a UUID', async () => {
      await expectProblem(
        await svc.api('owner', '/api/v1/connections/not-a-uuid'),
        404,
        'connection_not_found',
      );
    });
  });
});
