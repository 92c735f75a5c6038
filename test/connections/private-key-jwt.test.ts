/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2) against the real oidc-provider: clients
 * registered with only a PUBLIC key in their `jwks`, the service holding the private key (PEM
 * PKCS#8, a private JWK, an EC key). The code exchange, a refresh and the revocation at disconnect
 * are each authenticated by a fresh signed assertion, captured and verified at the provider; a
 * service holding the wrong key fails the connect cleanly, as a config error.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const scopes = ['openid', 'profile', 'email', 'offline_access'];

/** One token or revocation endpoint request as oidc-provider saw it, after it answered. */
interface SeenRequest {
  path: string;
  clientId: string | undefined;
  grantType: string | undefined;
  assertionType: string | undefined;
  assertion: string | undefined;
  hasSecret: boolean;
  status: number;
  error: string | undefined;
}

/** A client of the provider and the key the service signs its assertions with. */
interface KeyedClient {
  clientId: string;
  kid: string;
  /** The key the provider verifies with (registered in the client's `jwks`). */
  publicKey: KeyObject;
  /** What goes into the service's `privateKey`. */
  serviceKey: string | Record<string, unknown>;
  alg: string;
}

const algorithms = { rsa: 'RS256', ec: 'ES256', ed25519: 'Ed25519' } as const;

function keyedClient(
  clientId: string,
  kid: string,
  form: 'pem' | 'jwk',
  type: keyof typeof algorithms = 'rsa',
): KeyedClient {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const serviceKey =
    form === 'pem'
      ? privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
      : { ...privateKey.export({ format: 'jwk' }), kid };
  return { clientId, kid, publicKey, serviceKey, alg: algorithms[type] };
}

describe.each(databaseKinds)('private_key_jwt client authentication against oidc-provider on %s', (kind) => {
  const pem = keyedClient('nunq-pem', 'pem-key-1', 'pem');
  const jwk = keyedClient('nunq-jwk', 'jwk-key-1', 'jwk');
  // The config accepts EC and OKP keys too; neither carries an `alg` here, so it follows from the key.
  const ec = keyedClient('nunq-ec', 'ec-key-1', 'pem', 'ec');
  const ed = keyedClient('nunq-ed', 'ed-key-1', 'jwk', 'ed25519');
  /** Registered with this public key; the service signs with an unrelated private key under the same kid. */
  const registered = keyedClient('nunq-wrong', 'wrong-key-1', 'pem');
  const unrelated = keyedClient('nunq-wrong', 'wrong-key-1', 'pem');
  /** An OKP key the config accepts but that can only agree keys, not sign. */
  const cannotSign: KeyedClient = {
    ...pem,
    clientId: 'nunq-x25519',
    serviceKey: generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
  const byIntegration = { 'items-pem': pem, 'items-jwk': jwk, 'items-ec': ec, 'items-ed': ed };

  let database: TestDatabase;
  let provider: RunningOidcProvider;
  let svc: TestService;
  const seen: SeenRequest[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    const servicePort = await freePort();
    const redirectUri = `http://127.0.0.1:${servicePort}/oauth/callback`;
    provider = await startOidcProvider({
      clients: [pem, jwk, ec, ed, registered].map((c) => ({
        client_id: c.clientId,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ ...c.publicKey.export({ format: 'jwk' }), kid: c.kid, alg: c.alg, use: 'sig' }] },
      })),
      accounts: { alice: { name: 'Alice Example', email: 'alice@example.com' } },
    });
    provider.provider.use(async (ctx, next) => {
      await next();
      if (ctx.method !== 'POST' || !['/token', '/token/revocation'].includes(ctx.path)) return;
      const c = ctx as typeof ctx & {
        status: number;
        body?: { error?: string };
        oidc?: { params?: Record<string, unknown> };
      };
      const param = (name: string) => {
        const v = c.oidc?.params?.[name];
        return typeof v === 'string' ? v : undefined;
      };
      seen.push({
        path: ctx.path,
        clientId: param('client_id'),
        grantType: param('grant_type'),
        assertionType: param('client_assertion_type'),
        assertion: param('client_assertion'),
        hasSecret: param('client_secret') !== undefined,
        status: c.status,
        error: c.body?.error,
      });
    });
    const serviceProvider = (id: string, c: KeyedClient) => ({
      id,
      type: 'oidc',
      issuer: provider.issuer,
      clientId: c.clientId,
      clientAuthMethod: 'private_key_jwt',
      privateKey: c.serviceKey,
      privateKeyId: c.kid,
    });
    const integration = (id: string, providerId: string) => ({ id, name: id, provider: providerId, scopes });
    svc = await startTestService({
      database,
      port: servicePort,
      providers: [
        serviceProvider('pem', pem),
        serviceProvider('jwk', jwk),
        serviceProvider('ec', ec),
        serviceProvider('ed', ed),
        serviceProvider('wrong', unrelated),
        serviceProvider('x25519', cannotSign),
      ],
      integrations: [
        integration('items-pem', 'pem'),
        integration('items-jwk', 'jwk'),
        integration('items-ec', 'ec'),
        integration('items-ed', 'ed'),
        integration('items-wrong', 'wrong'),
        integration('items-x25519', 'x25519'),
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await provider?.close();
    await database?.drop();
  });

  /** Signs `user` in to the service, runs the connect through the provider's pages, returns where the callback sent the browser. */
  async function connect(user: string, integration: string): Promise<{ ua: UserAgent; back: URL }> {
    const ua = await signedInAgent(svc, user);
    const callback = await ua.signInAtOidcProvider(await ua.startConnect(svc.url, integration), 'alice');
    const done = await ua.get(callback.href);
    expect(done.status).toBe(302);
    return { ua, back: new URL(done.headers.get('location')!, svc.url) };
  }

  /** The requests of one client with one grant type (or to one path), in order. */
  const requestsOf = (clientId: string, what: { grantType?: string; path?: string }) =>
    seen.filter(
      (r) =>
        r.clientId === clientId &&
        (what.grantType === undefined || r.grantType === what.grantType) &&
        (what.path === undefined || r.path === what.path),
    );

  /** Verifies an assertion the provider received with the client's public key and checks RFC 7523 §3. */
  async function verifiedAssertion(r: SeenRequest | undefined, c: KeyedClient): Promise<JWTPayload> {
    expect(r?.assertionType).toBe(jwtBearer);
    expect(r?.hasSecret).toBe(false);
    const assertion = r?.assertion ?? '';
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: c.alg, kid: c.kid });
    const { payload } = await jwtVerify(assertion, c.publicKey, {
      algorithms: [c.alg],
      issuer: c.clientId,
      subject: c.clientId,
      audience: provider.issuer,
    });
    expect(payload.jti).toEqual(expect.any(String));
    const now = Math.floor(Date.now() / 1000);
    expect(payload.exp).toBeGreaterThan(now);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    return payload;
  }

  it.each(Object.entries(byIntegration))(
    '%s: connects (code exchange by assertion), then refreshes with a fresh assertion',
    async (integration, c) => {
      const user = `u-${integration}`;
      const { back } = await connect(user, integration);
      expect(back.searchParams.get('outcome')).toBe('connected');
      const connectionId = back.searchParams.get('connection')!;
      const view = await (await svc.api(user, `/api/v1/connections/${connectionId}`)).json();
      expect(view).toMatchObject({ status: 'active', account: { id: 'alice', name: 'Alice Example' } });

      const [exchange, ...more] = requestsOf(c.clientId, { grantType: 'authorization_code' });
      expect(more).toEqual([]);
      expect(exchange?.status).toBe(200);
      const first = await verifiedAssertion(exchange, c);

      const tokens = svc.service.ctx.tokens;
      const before = await tokens.getAccessToken(connectionId);
      const after = await tokens.getAccessToken(connectionId, { force: true });
      expect(after.value).not.toBe(before.value);
      const [refresh] = requestsOf(c.clientId, { grantType: 'refresh_token' });
      expect(refresh?.status).toBe(200);
      const second = await verifiedAssertion(refresh, c);
      expect(second.jti).not.toBe(first.jti);
      // The refreshed token is the one the provider's userinfo accepts now.
      const me = await fetch(`${provider.issuer}/me`, { headers: { authorization: after.authorization } });
      expect(me.status).toBe(200);
      expect((await svc.api(user, `/api/v1/connections/${connectionId}`)).status).toBe(200);
    },
  );

  it('disconnect revokes at the provider with an assertion', async () => {
    const [c] = await (await svc.api('u-items-pem', '/api/v1/connections')).json();
    const r = await svc.api('u-items-pem', `/api/v1/connections/${c.id}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    const [revocation] = requestsOf(pem.clientId, { path: '/token/revocation' });
    expect(revocation?.status).toBe(200);
    await verifiedAssertion(revocation, pem);
    const audit = await svc.service.ctx.audit.list({ targetId: c.id });
    const deleted = audit.find((a) => a.action === 'connection.deleted');
    expect(JSON.parse(deleted!.data).revocation).toBe('revoked');
  });

  it('a key the client did not register fails the connect as a config error and creates nothing', async () => {
    const { ua, back } = await connect('u-wrong', 'items-wrong');
    expect(back.pathname).toBe('/');
    expect(back.searchParams.get('outcome')).toBe('failed');
    expect(back.searchParams.has('connection')).toBe(false);
    const page = await ua.get(back.href);
    expect(page.status).toBe(200);
    expect(page.body).toContain('The connection could not be completed. Nothing was changed');

    // The provider refused the client, not the grant: invalid_client, never invalid_grant.
    const [exchange, ...more] = requestsOf('nunq-wrong', { grantType: 'authorization_code' });
    expect(more).toEqual([]);
    expect(exchange).toMatchObject({ status: 401, error: 'invalid_client', assertionType: jwtBearer });
    await expect(verifiedAssertion(exchange, registered)).rejects.toThrow(/signature verification failed/);
    await verifiedAssertion(exchange, unrelated);

    expect(await (await svc.api('u-wrong', '/api/v1/connections')).json()).toEqual([]);
    const integrations = await (await svc.api('u-wrong', '/api/v1/integrations')).json();
    expect(integrations).toContainEqual(
      expect.objectContaining({ id: 'items-wrong', status: 'not_connected' }),
    );
    const [failure] = (await svc.service.ctx.audit.list({ targetId: 'items-wrong' })).filter(
      (a) => a.action === 'authorization.failed',
    );
    expect(JSON.parse(failure!.data)).toEqual({ reason: 'config_error:invalid_client' });
  });

  it('a key that cannot sign is a config error before anything is sent (HTTP 502, not 500)', async () => {
    const r = await svc.api('u-x25519', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'items-x25519' }),
    });
    expect(r.status).toBe(502);
    expect((await r.json()).code).toBe('provider_misconfigured');
    expect(requestsOf('nunq-x25519', {})).toEqual([]);
  });

  it('never writes a private key or an assertion to its log', () => {
    const logs = svc.logs.join('\n');
    expect(logs).toContain('authorization finished');
    /** A full 64-character line from inside a PEM. */
    const pemLine = (key: string | Record<string, unknown>) => String(key).split('\n')[2]!;
    for (const secret of [
      pemLine(pem.serviceKey),
      pemLine(ec.serviceKey),
      pemLine(unrelated.serviceKey),
      String((jwk.serviceKey as { d: string }).d),
      String((ed.serviceKey as { d: string }).d),
      ...seen.map((r) => r.assertion!.split('.')[2]!),
    ]) {
      expect(secret.length).toBeGreaterThan(40);
      expect(logs).not.toContain(secret);
    }
  });
});
