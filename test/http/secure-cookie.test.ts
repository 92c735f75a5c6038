import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { generateKey } from '../../src/crypto/index.js';
import { securityHeadersFor } from '../../src/http/security-headers.js';
import { mintToken } from '../../src/identity/jwt.js';
import { createLogger } from '../../src/observability/logger.js';
import { createService, type Service } from '../../src/service/service.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { testJwtSecret } from '../support/service.js';

const publicUrl = 'https://connect.nunq.example';
const silent = new Writable({ write: (_chunk, _enc, cb) => cb() });

/**
 * Behind a TLS-terminating proxy the public URL is https: the session cookie must then be
 * `__Host-` prefixed and Secure, and CSRF compares `Origin` with that public origin. The service
 * is driven with `inject`, so no TLS is needed in the test.
 */
describe.each(databaseKinds)('session cookie on an https public URL (%s)', (kind) => {
  let database: TestDatabase;
  let service: Service;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const config = validateConfig({
      server: { port: 0, host: '127.0.0.1', publicUrl },
      database: { url: database.url },
      encryption: { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
      auth: { mode: 'dev', jwt: { secret: testJwtSecret } },
    });
    service = await createService(config, {
      logger: createLogger({ destination: silent }),
      background: false,
    });
  });
  afterAll(async () => {
    await service?.close();
    await database?.drop();
  });

  async function signIn(): Promise<{ setCookie: string; cookie: string }> {
    const token = await mintToken(testJwtSecret, { sub: 'alice' }, { expiresIn: '5m' });
    const res = await service.app.inject({ method: 'GET', url: `/session?token=${token}&return_to=/x` });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/x');
    const header = res.headers['set-cookie'];
    const setCookie = Array.isArray(header) ? header[0] : header;
    expect(setCookie).toBeDefined();
    return { setCookie: setCookie!, cookie: setCookie!.split(';')[0]! };
  }

  it('pins https with HSTS on every answer (pages, API, errors); a plain-http service sends none', async () => {
    for (const url of ['/', '/api/v1/integrations', '/nowhere', '/healthz']) {
      const res = await service.app.inject({ method: 'GET', url });
      expect(res.headers['strict-transport-security'], url).toBe('max-age=31536000');
    }
    expect(securityHeadersFor('http://127.0.0.1:3000')['strict-transport-security']).toBeUndefined();
  });

  it('sets a __Host- cookie that is Secure, HttpOnly, SameSite=Lax, Path=/ and has no Domain', async () => {
    const { setCookie } = await signIn();
    expect(setCookie).toMatch(/^__Host-nunq_session=[A-Za-z0-9_-]{43};/);
    const attributes = setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toContain('secure');
    expect(attributes).toContain('httponly');
    expect(attributes).toContain('samesite=lax');
    expect(attributes).toContain('path=/');
    expect(attributes.some((a) => a.startsWith('domain='))).toBe(false);
  });

  it('reads the __Host- cookie back, and ignores a plain nunq_session cookie', async () => {
    const { cookie } = await signIn();
    const me = await service.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: 'alice' });
    const value = cookie.slice(cookie.indexOf('=') + 1);
    const plain = await service.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { cookie: `nunq_session=${value}` },
    });
    expect(plain.statusCode).toBe(401);
  });

  it('sets the same cookie from /dev/login', async () => {
    const res = await service.app.inject({
      method: 'POST',
      url: '/dev/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'name=bob&return_to=%2F',
    });
    expect(res.statusCode).toBe(303);
    const header = res.headers['set-cookie'];
    const setCookie = String(Array.isArray(header) ? header[0] : header);
    expect(setCookie).toMatch(/^__Host-nunq_session=/);
    expect(setCookie.toLowerCase()).toContain('; secure');
  });

  it('compares Origin with the https public origin', async () => {
    const { cookie } = await signIn();
    const me = await service.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    const csrf = (me.json() as { csrfToken: string }).csrfToken;
    const post = (origin: string) =>
      service.app.inject({
        method: 'POST',
        url: '/api/v1/connections',
        headers: { cookie, origin, 'x-csrf-token': csrf, 'content-type': 'application/json' },
        payload: { integration: 'nope' },
      });
    const same = await post(publicUrl);
    expect(same.statusCode).toBe(404);
    expect(same.json()).toMatchObject({ code: 'integration_not_found' });
    for (const origin of [
      'http://connect.nunq.example',
      'https://evil.example',
      'https://connect.nunq.example:8443',
    ]) {
      const cross = await post(origin);
      expect(cross.statusCode, origin).toBe(403);
      expect(cross.json()).toMatchObject({ code: 'csrf_failed' });
    }
  });
});
