import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDemoApi, startDemoApi } from '../../src/demo/demo-api.js';

const audience = 'http://127.0.0.1/demo-api';

/** Bad input 6: the demo API answers every body quickly, deeply nested JSON included. */
describe('the demo API and deeply nested JSON', () => {
  let issuerServer: Server;
  let issuer: string;
  let api: RunningDemoApi;
  let token: string;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    issuerServer = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration')
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      else res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
    api = await startDemoApi({ issuer, audience });
    token = await new SignJWT({ scope: 'items:read' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
  });
  afterAll(async () => {
    await api?.close();
    await new Promise((r) => issuerServer?.close(r));
  });

  const echo = (body: string) =>
    fetch(`${api.url}/echo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(3000),
    });

  it.each([
    { name: '30,000 nested arrays', body: `${'['.repeat(30_000)}${']'.repeat(30_000)}` },
    { name: '9,000 nested objects', body: `${'{"a":'.repeat(9_000)}1${'}'.repeat(9_000)}` },
    { name: '65 nested arrays', body: `${'['.repeat(65)}${']'.repeat(65)}` },
  ])('answers 400 at once for $name', async ({ body }) => {
    const started = Date.now();
    const res = await echo(body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'too_deeply_nested', maxDepth: 64 });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it.each([
    { name: '64 nested arrays', body: `${'['.repeat(64)}${']'.repeat(64)}` },
    { name: 'brackets inside strings', body: JSON.stringify({ text: '['.repeat(1000), quote: '\\"[' }) },
  ])('echoes $name', async ({ body }) => {
    const res = await echo(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(body));
  });
});
