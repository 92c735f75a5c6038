/**
 * An `entra` provider with a certificate credential (privateKey + privateKeyId = the thumbprint)
 * against the Entra-shaped server, which accepts only assertions naming the key by `x5t` (no `kid`)
 * with the tenant's token endpoint as audience: connect and refresh, for a tenant id and for
 * `organizations`; a key Entra does not know fails the connect as a config error (AADSTS700027).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch } from '../../src/oauth/outbound.js';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startTestService, type TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';

const clientId = 'c0ffee00-7a51-4c1e-9d8e-e2e000000007';
const sites = 'https://graph.microsoft.com/Sites.Read.All';

/** An RSA key pair and a stand-in for its certificate's SHA-1 thumbprint (base64url), as Entra's `x5t`. */
function certificateKey() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const thumbprint = createHash('sha1')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest('base64url');
  return { pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey, thumbprint };
}

describe('private_key_jwt with an Entra certificate credential', () => {
  const registered = certificateKey();
  const unknown = certificateKey();
  let database: TestDatabase;
  let entra: RunningEntraServer;
  let svc: TestService;
  /** Every client assertion the service sent, with the URL it went to. */
  const assertions: Array<{ url: string; assertion: string }> = [];

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const servicePort = await freePort();
    entra = await startEntraServer({
      clients: [
        {
          clientId,
          certificate: { publicKey: registered.publicKey, thumbprint: registered.thumbprint },
          redirectUris: [`http://127.0.0.1:${servicePort}/oauth/callback`],
        },
      ],
    });
    const outbound = createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 });
    const provider = (id: string, tenant: string, key: ReturnType<typeof certificateKey>) => ({
      id,
      type: 'entra',
      tenant,
      authority: entra.url,
      clientId,
      clientAuthMethod: 'private_key_jwt',
      privateKey: key.pem,
      privateKeyId: key.thumbprint,
    });
    const integration = (id: string, providerId: string) => ({
      id,
      name: id,
      provider: providerId,
      scopes: [sites],
      api: { baseUrl: entra.graphUrl },
    });
    svc = await startTestService({
      database,
      port: servicePort,
      providers: [
        provider('by-tenant-id', entra.tenantId, registered),
        provider('organizations', 'organizations', registered),
        provider('unknown-key', entra.tenantId, unknown),
      ],
      integrations: [
        integration('sites-tenant', 'by-tenant-id'),
        integration('sites-orgs', 'organizations'),
        integration('sites-unknown', 'unknown-key'),
      ],
      serviceOptions: {
        fetch: async (input, init) => {
          const assertion = init?.body instanceof URLSearchParams ? init.body.get('client_assertion') : null;
          if (assertion !== null) assertions.push({ url: String(input), assertion });
          return outbound(input, init);
        },
      },
    });
  });

  afterAll(async () => {
    await svc?.close();
    await entra?.close();
    await database?.drop();
  });

  async function connect(user: string, integration: string): Promise<URL> {
    const ua = await signedInAgent(svc, user);
    const callback = await ua.signInAtEntra(await ua.startConnect(svc.url, integration), 'megan.bowen');
    const done = await ua.get(callback.href);
    expect(done.status).toBe(302);
    return new URL(done.headers.get('location')!, svc.url);
  }

  it.each([
    ['sites-tenant', () => entra.tenantId],
    ['sites-orgs', () => 'organizations'],
  ])(
    '%s: connects and refreshes, each request with an x5t assertion for that token endpoint',
    async (integration, tenant) => {
      const before = { ...entra.counters.tokenRequests };
      const sent = assertions.length;
      const user = `u-${integration}`;
      const back = await connect(user, integration);
      expect(back.searchParams.get('outcome')).toBe('connected');
      const connectionId = back.searchParams.get('connection')!;
      const view = await (await svc.api(user, `/api/v1/connections/${connectionId}`)).json();
      expect(view).toMatchObject({ status: 'active', account: { name: 'Megan Bowen' } });
      expect(view.account.id).toMatch(new RegExp(`@${entra.tenantId}$`));

      const tokens = svc.service.ctx.tokens;
      const first = await tokens.getAccessToken(connectionId);
      const refreshed = await tokens.getAccessToken(connectionId, { force: true });
      expect(refreshed.value).not.toBe(first.value);
      const me = await fetch(`${entra.graphUrl}/v1.0/me`, {
        headers: { authorization: refreshed.authorization },
      });
      expect(me.status).toBe(200);
      expect(entra.counters.tokenRequests).toEqual({
        authorization_code: (before.authorization_code ?? 0) + 1,
        refresh_token: (before.refresh_token ?? 0) + 1,
      });

      const tokenEndpoint = `${entra.url}/${tenant()}/oauth2/v2.0/token`;
      const mine = assertions.slice(sent);
      expect(mine.map((a) => a.url)).toEqual([tokenEndpoint, tokenEndpoint]);
      for (const { assertion } of mine) {
        expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', x5t: registered.thumbprint });
        expect(decodeJwt(assertion)).toMatchObject({ iss: clientId, sub: clientId, aud: tokenEndpoint });
      }
      expect(new Set(mine.map((a) => decodeJwt(a.assertion).jti)).size).toBe(2);
    },
  );

  it('a key Entra does not know fails the connect as a config error (AADSTS700027) and creates nothing', async () => {
    const back = await connect('u-unknown', 'sites-unknown');
    expect(back.searchParams.get('outcome')).toBe('failed');
    expect(back.searchParams.has('connection')).toBe(false);
    expect(await (await svc.api('u-unknown', '/api/v1/connections')).json()).toEqual([]);
    const [failure] = (await svc.service.ctx.audit.list({ targetId: 'sites-unknown' })).filter(
      (a) => a.action === 'authorization.failed',
    );
    expect(JSON.parse(failure!.data)).toEqual({ reason: 'config_error:invalid_client' });
    expect(decodeProtectedHeader(assertions.at(-1)!.assertion).x5t).toBe(unknown.thumbprint);
  });
});
