import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { mintToken } from '../../src/identity/jwt.js';
import { type Connections, createConnections, IntegrationDisabledError } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { ConnectionRepository } from '../../src/store/repos/connections.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, lifecycleClientSecret, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { testJwtSecret } from '../support/service.js';
import { webhookEvents } from '../support/webhook-receiver.js';

/** The bound: a change made on one instance is in force on every other within 2 s. */
const boundMs = 2_000;

/**
 * Two service instances on one database (a SQLite file, PostgreSQL): an admin changes the catalog
 * on instance A; instance B, which has the old state in its caches, follows within 2 s, without
 * a restart. Real oidc-provider, real demo API behind the proxy.
 */
describe.each(databaseKinds)('catalog changes propagate between instances on %s', (kind) => {
  let lc: Lifecycle;
  let a: TestService;
  let b: TestService;
  let connectionId: string;
  /** The in-process library on the same database: a third reader of the catalog. */
  let lib: Connections;
  const user = 'u-prop';

  const adminCall = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${a.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await a.token('the-admin', 'admin')}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, json: text === '' ? undefined : JSON.parse(text) };
  };
  /** Polls `check` on instance B until it holds; how long that took after the change. */
  const seenOnB = async (what: string, check: () => Promise<boolean>) => {
    const changedAt = Date.now();
    for (;;) {
      if (await check()) return Date.now() - changedAt;
      if (Date.now() - changedAt > boundMs + 3_000) throw new Error(`B never saw: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const proxyOnB = async (groups?: string[]) => {
    const token = await mintToken(testJwtSecret, { sub: user, ...(groups ? { groups } : {}) });
    const r = await fetch(`${b.url}${proxyPath(connectionId)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await r.text();
    return {
      status: r.status,
      code: r.status >= 400 ? (JSON.parse(body) as { code: string }).code : undefined,
    };
  };
  const namesOnB = async () =>
    ((await (await b.api(user, '/api/v1/integrations')).json()) as Array<{ id: string; name: string }>).map(
      (i) => `${i.id}:${i.name}`,
    );
  /** Makes the connection due for a refresh now. */
  const markDue = () =>
    b.service.ctx.store.db
      .updateTable('connections')
      .set({ next_refresh_at: 0 })
      .where('id', '=', connectionId)
      .execute();
  /**
   * The ids one scheduler claim on B takes (the claim of this database's kind: SKIP LOCKED on
   * PostgreSQL); their leases are let go again at once.
   */
  const claimedOnB = async () => {
    const store = b.service.ctx.store;
    const owner = `probe:${randomUUID()}`;
    const rows = await new ConnectionRepository(store.db).claimDueRefreshes(
      owner,
      Date.now(),
      60_000,
      100,
      store.kind === 'postgres',
    );
    await store.db
      .updateTable('connections')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', owner)
      .execute();
    return rows.map((r) => r.id);
  };

  beforeAll(async () => {
    lc = await startLifecycle({ kind, accessTokenTtlSeconds: 3600 });
    a = await lc.startService();
    b = await lc.startService();
    const port = lc.takePort();
    lib = await createConnections({
      config: validateConfig({
        ...lc.sharedConfig(),
        server: { port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}` },
      }),
      logger: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    });
  });
  afterAll(async () => {
    await lib?.close();
    await lc?.close();
  });

  it('an integration added on A is offered on B and connects through its new provider', async () => {
    const provider = await adminCall('POST', '/api/v1/admin/providers', {
      id: 'runtime-idp',
      type: 'oidc',
      issuer: lc.oidc.issuer,
      clientId: 'nunq',
      clientSecret: lifecycleClientSecret,
    });
    expect(provider.status).toBe(201);
    expect(await namesOnB()).not.toContain('runtime-items:Runtime Items');
    const created = await adminCall('POST', '/api/v1/admin/integrations', {
      id: 'runtime-items',
      name: 'Runtime Items',
      provider: 'runtime-idp',
      scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
      api: { baseUrl: lc.api.url },
    });
    expect(created.status).toBe(201);
    const took = await seenOnB('the new integration', async () =>
      (await namesOnB()).includes('runtime-items:Runtime Items'),
    );
    expect(took).toBeLessThan(boundMs);
    connectionId = await lc.connect(b, user, 'alice', 'runtime-items');
    expect((await proxyOnB()).status).toBe(200);
  });

  it('a rename on A shows on B within 2 s', async () => {
    expect(
      (await adminCall('PATCH', '/api/v1/admin/integrations/runtime-items', { name: 'Renamed Items' }))
        .status,
    ).toBe(200);
    const took = await seenOnB('the new name', async () =>
      (await namesOnB()).includes('runtime-items:Renamed Items'),
    );
    expect(took).toBeLessThan(boundMs);
  });

  it('disabled on A: B refuses the proxy with 409 integration_disabled within 2 s, keeps the connection, does not refresh it', async () => {
    expect((await proxyOnB()).status).toBe(200); // B's caches hold the enabled integration
    const off = await adminCall('PATCH', '/api/v1/admin/integrations/runtime-items', { enabled: false });
    expect(off.json).toMatchObject({ enabled: false, unusableConnections: 1 });
    const took = await seenOnB(
      'the disabled integration',
      async () => (await proxyOnB()).code === 'integration_disabled',
    );
    expect(took).toBeLessThan(boundMs);
    expect((await proxyOnB()).status).toBe(409);
    await expect(lib.getAccessToken(user, connectionId)).rejects.toBeInstanceOf(IntegrationDisabledError);
    expect(await namesOnB()).not.toContain('runtime-items:Renamed Items');
    expect((await b.api(user, `/api/v1/connections/${connectionId}`)).status).toBe(200);

    // The scheduler claims no refresh of it while disabled, and does again once enabled.
    await markDue();
    expect(await claimedOnB()).not.toContain(connectionId);

    expect(
      (await adminCall('PATCH', '/api/v1/admin/integrations/runtime-items', { enabled: true })).status,
    ).toBe(200);
    expect(await claimedOnB()).toContain(connectionId);
    const back = await seenOnB('the re-enabled integration', async () => (await proxyOnB()).status === 200);
    expect(back).toBeLessThan(boundMs);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await lib.getAccessToken(user, connectionId)).connectionId).toBe(connectionId);
  });

  it('its provider disabled on A: B refuses the proxy the same way within 2 s', async () => {
    const off = await adminCall('PATCH', '/api/v1/admin/providers/runtime-idp', { enabled: false });
    expect(off.json).toMatchObject({ enabled: false, unusableConnections: 1 });
    const took = await seenOnB(
      'the disabled provider',
      async () => (await proxyOnB()).code === 'integration_disabled',
    );
    expect(took).toBeLessThan(boundMs);
    // The scheduler claims no refresh of it while its provider is disabled, and does again once enabled.
    await markDue();
    expect(await claimedOnB()).not.toContain(connectionId);
    await adminCall('PATCH', '/api/v1/admin/providers/runtime-idp', { enabled: true });
    expect(await claimedOnB()).toContain(connectionId);
    expect(
      await seenOnB('the re-enabled provider', async () => (await proxyOnB()).status === 200),
    ).toBeLessThan(boundMs);
  });

  it('limited to a group on A: B answers 404 to users outside it within 2 s, and serves members', async () => {
    await adminCall('PATCH', '/api/v1/admin/integrations/runtime-items', { groups: ['finance'] });
    const took = await seenOnB('the group limit', async () => (await proxyOnB()).status === 404);
    expect(took).toBeLessThan(boundMs);
    expect((await proxyOnB()).code).toBe('connection_not_found');
    expect((await b.api(user, `/api/v1/connections/${connectionId}`)).status).toBe(404);
    expect((await proxyOnB(['finance'])).status).toBe(200);
    await adminCall('PATCH', '/api/v1/admin/integrations/runtime-items', { groups: null });
    expect(await seenOnB('the lifted limit', async () => (await proxyOnB()).status === 200)).toBeLessThan(
      boundMs,
    );
  });

  it('deleted on A after confirmation (its provider disabled): the connection is revoked at the provider and removed, its user told', async () => {
    const unconfirmed = await adminCall('DELETE', '/api/v1/admin/integrations/runtime-items');
    expect(unconfirmed.status).toBe(409);
    expect(unconfirmed.json).toMatchObject({ code: 'confirm_required', connections: 1 });
    expect((await proxyOnB()).status).toBe(200);
    // Disabled first, as an admin winding it down would: the grant is still revoked at the provider.
    expect((await adminCall('PATCH', '/api/v1/admin/providers/runtime-idp', { enabled: false })).status).toBe(
      200,
    );
    expect((await adminCall('DELETE', '/api/v1/admin/integrations/runtime-items?confirm=true')).status).toBe(
      204,
    );
    expect((await b.api(user, `/api/v1/connections/${connectionId}`)).status).toBe(404);
    expect(await seenOnB('the deletion', async () => (await proxyOnB()).status === 404)).toBeLessThan(
      boundMs,
    );
    const audit = await a.service.ctx.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('target_id', '=', connectionId)
      .where('action', '=', 'connection.deleted')
      .executeTakeFirstOrThrow();
    expect(audit.actor).toBe('the-admin');
    expect(JSON.parse(audit.data)).toMatchObject({ integration: 'runtime-items', revocation: 'revoked' });
    await lc.receiver.waitFor((got) =>
      webhookEvents(got).some(
        ({ event }) => event.type === 'connection.deleted' && event.data.connectionId === connectionId,
      ),
    );
    // The provider may go now that nothing uses it.
    expect((await adminCall('DELETE', '/api/v1/admin/providers/runtime-idp')).status).toBe(204);
  });
});
