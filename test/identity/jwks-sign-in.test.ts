/**
 * Sign-in with platform JWTs verified against a JWKS (`auth.jwt.jwksUrl`, `issuer`, `audience`):
 * a real JWKS server on 127.0.0.1 publishing an RSA and an EC key (without `alg`, as many
 * platforms publish them), a real service instance, and tokens signed by the test. A good token
 * works as an API bearer and as a /session hand-off; a wrong issuer, audience, kid, key, algorithm,
 * an expired token or one without `exp` is refused with 401.
 */

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { exportJWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { generateKey } from '../../src/crypto/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createService, type Service } from '../../src/service/service.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort } from '../support/service.js';

const issuer = 'https://platform.example.test';
const audience = 'nunq-connect';

type SigningKey = KeyObject;
const rsaPair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });

describe.each(databaseKinds)('JWKS sign-in on %s', (kind) => {
  let database: TestDatabase;
  let jwksServer: Server;
  let jwksHits = 0;
  let service: Service;
  let url: string;
  let rsa: SigningKey;
  let ec: SigningKey;
  /** A key of the right type that the JWKS does not publish. */
  let stranger: SigningKey;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const rsaKeys = rsaPair();
    const ecKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    rsa = rsaKeys.privateKey;
    ec = ecKeys.privateKey;
    stranger = rsaPair().privateKey;
    const keys = [
      { ...(await exportJWK(rsaKeys.publicKey)), kid: 'rsa-1', use: 'sig' },
      { ...(await exportJWK(ecKeys.publicKey)), kid: 'ec-1', use: 'sig' },
    ];
    jwksServer = createServer((req, res) => {
      jwksHits++;
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = validateConfig({
      server: { port, host: '127.0.0.1', publicUrl: url },
      database: { url: database.url },
      encryption: { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
      auth: { mode: 'jwt', jwt: { jwksUrl, issuer, audience }, admins: [] },
      outbound: { allow: ['127.0.0.0/8'] },
      providers: [],
      integrations: [],
    });
    service = await createService(config, {
      logger: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
      background: false,
    });
    await service.listen();
  });
  afterAll(async () => {
    await service?.close();
    await new Promise((r) => jwksServer?.close(r));
    await database?.drop();
  });

  interface TokenSpec {
    key?: SigningKey;
    alg?: string;
    kid?: string;
    claims?: JWTPayload;
    iss?: string | null;
    aud?: string | null;
    /** Seconds from now; null: no exp claim. */
    exp?: number | null;
  }

  async function token(spec: TokenSpec = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({ sub: 'alice', name: 'Alice', ...spec.claims })
      .setProtectedHeader({ alg: spec.alg ?? 'RS256', kid: spec.kid ?? 'rsa-1', typ: 'JWT' })
      .setIssuedAt(now - 5);
    if (spec.iss !== null) jwt.setIssuer(spec.iss ?? issuer);
    if (spec.aud !== null) jwt.setAudience(spec.aud ?? audience);
    if (spec.exp !== null) jwt.setExpirationTime(now + (spec.exp ?? 600));
    return jwt.sign(spec.key ?? rsa);
  }

  const me = (jwt: string) => fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${jwt}` } });

  it('accepts a token signed with a published RSA key, with the right issuer and audience', async () => {
    const r = await me(await token());
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ id: 'alice' });
    expect(jwksHits).toBeGreaterThanOrEqual(1);
  });

  it('accepts a token signed with a published EC key (ES256)', async () => {
    const r = await me(await token({ key: ec, alg: 'ES256', kid: 'ec-1', claims: { sub: 'bob' } }));
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ id: 'bob' });
  });

  it('exchanges a good token for a session at /session', async () => {
    const r = await fetch(`${url}/session?token=${await token({ claims: { sub: 'carol' } })}&return_to=/`, {
      redirect: 'manual',
    });
    expect([302, 303]).toContain(r.status);
    expect(r.headers.getSetCookie().join(';')).toMatch(/nunq_session=/);
  });

  it.each<[string, () => Promise<TokenSpec>]>([
    ['a wrong issuer', async () => ({ iss: 'https://evil.example.test' })],
    ['no issuer', async () => ({ iss: null })],
    ['a wrong audience', async () => ({ aud: 'someone-else' })],
    ['no audience', async () => ({ aud: null })],
    ['an unknown kid', async () => ({ kid: 'rsa-2' })],
    ['a published kid but an unpublished key', async () => ({ key: stranger })],
    ['the EC key named as the RSA kid', async () => ({ key: ec, alg: 'ES256', kid: 'rsa-1' })],
    ['an algorithm outside the allow-list (RS384 with the published key)', async () => ({ alg: 'RS384' })],
    ['an expired token (beyond the 30 s tolerance)', async () => ({ exp: -120 })],
    ['no exp claim', async () => ({ exp: null })],
    ['a sub outside the user id pattern', async () => ({ claims: { sub: 'a b/../c' } })],
  ])('refuses %s with 401', async (_name, spec) => {
    const r = await me(await token(await spec()));
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await r.json()).toMatchObject({ code: 'unauthenticated' });
  });

  it('refuses an HS256 token, even one keyed with the published RSA key material', async () => {
    const jwk = (await exportJWK(rsa)) as { n: string };
    const hs = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(jwk.n));
    expect((await me(hs)).status).toBe(401);
  });

  it('refuses an unsigned token (alg none)', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({
      sub: 'alice',
      iss: issuer,
      aud: audience,
      exp: Math.floor(Date.now() / 1000) + 600,
    })}.`;
    expect((await me(none)).status).toBe(401);
  });
});
