/**
 * `nunq-connect/client` against a real running service (real oidc-provider, SQLite): every
 * method, typed answers, and refusals thrown as `ProblemError` with the problem+json fields.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type NunqConnectClient, PopupError, ProblemError } from '../../src/client/index.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import { freePort, type TestService } from '../support/service.js';

const clientDir = join(import.meta.dirname, '../../src/client');

describe('nunq-connect/client against a running service', () => {
  let lc: Lifecycle;
  let svc: TestService;
  let client: NunqConnectClient;
  const user = 'client-user';

  beforeAll(async () => {
    lc = await startLifecycle({ kind: 'sqlite', ports: 2, webhooks: false });
    svc = await lc.startService();
    client = createClient({ baseUrl: `${svc.url}/`, token: () => svc.token(user) });
  });
  afterAll(async () => {
    await lc?.close();
  });

  it('reads the user, integrations and connections, starts and ends connections', async () => {
    expect(await client.me()).toMatchObject({ id: user, role: 'user' });
    expect(await client.listIntegrations()).toEqual([
      { id: 'items', name: 'Items', kind: 'oauth', status: 'not_connected' },
    ]);
    const started = await client.createConnection({ integration: 'items', returnTo: '/done' });
    expect(new URL(started.authorizationUrl).origin).toBe(new URL(lc.oidc.issuer).origin);

    const id = await lc.connect(svc, user);
    const [listed] = await client.listConnections();
    expect(listed).toMatchObject({ id, integration: 'items', status: 'active' });
    const one = await client.getConnection(id);
    expect(one.scopes).toContain('items:read');
    expect((await client.listIntegrations())[0]).toMatchObject({ status: 'active', connectionId: id });
    const again = await client.reconnectConnection(id);
    expect(again.authorizationUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);

    const notificationId = await svc.service.ctx.notifications.create(svc.service.ctx.store.db, {
      userId: user,
      type: 'connection.needs_reauth',
      connectionId: id,
      data: { integration: 'items' },
    });
    const [notification] = await client.listNotifications();
    expect(notification).toMatchObject({ id: notificationId, readAt: null });
    expect(await client.markNotificationRead(notificationId)).toBeUndefined();
    expect((await client.listNotifications())[0]?.readAt).not.toBeNull();

    expect(await client.deleteConnection(id)).toBeUndefined();
    expect(await client.listConnections()).toEqual([]);
  });

  it('throws ProblemError with the problem+json fields', async () => {
    const missing = await client.getConnection(randomUUID()).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ProblemError);
    expect(missing).toMatchObject({ status: 404, code: 'connection_not_found', title: 'Not Found' });

    const invalid = (await client
      .createConnection({ integration: 'Not An Id' })
      .catch((e: unknown) => e)) as ProblemError;
    expect(invalid.status).toBe(400);
    expect(invalid.code).toBe('validation_failed');
    expect(invalid.errors?.[0]?.path).toBe('body.integration');
    expect(invalid.problem?.type).toMatch(/validation-failed$/);

    const anonymous = createClient({ baseUrl: svc.url });
    await expect(anonymous.listConnections()).rejects.toMatchObject({ status: 401, code: 'unauthenticated' });

    const closedPort = await freePort();
    const nowhere = createClient({ baseUrl: `http://127.0.0.1:${closedPort}`, token: 'x' });
    await expect(nowhere.me()).rejects.toMatchObject({ status: 0, code: 'unexpected_response' });
  });

  it('reaches the admin API with an admin token, and a non-admin gets 404', async () => {
    const admin = createClient({ baseUrl: svc.url, token: await svc.token('boss', 'admin') });
    expect((await admin.admin.listProviders()).map((p) => p.id)).toEqual(['demo']);
    expect((await admin.admin.listIntegrations()).map((i) => i.id)).toEqual(['items']);
    expect(Array.isArray(await admin.admin.connectionOverview())).toBe(true);
    expect(Array.isArray(await admin.admin.listConnections({ status: 'active' }))).toBe(true);
    expect(Array.isArray(await admin.admin.listWebhooks())).toBe(true);
    const audit = await admin.admin.listAudit({ limit: 2 });
    expect(audit.length).toBeLessThanOrEqual(2);
    expect(audit[0]?.action).toEqual(expect.any(String));
    await expect(client.admin.listProviders()).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect((await admin.openApi()).openapi).toMatch(/^3\.1/);
  });

  it('connect() takes the outcome only from the service’s origin and its own popup', async () => {
    const popup = { closed: false };
    let listener: ((event: MessageEvent) => void) | undefined;
    let opened = '';
    const host = {
      open: (url: string) => {
        opened = url;
        return popup;
      },
      addEventListener: (_type: 'message', l: (event: MessageEvent) => void) => {
        listener = l;
      },
      removeEventListener: () => {
        listener = undefined;
      },
    };
    const done = client.connect('items', { window: host });
    expect(opened).toBe(`${svc.url}/connect/items?display=popup`);
    const outcome = {
      type: 'nunq-connect',
      outcome: 'connected',
      integration: 'items',
      connectionId: randomUUID(),
    };
    const send = (origin: string, source: unknown, data: unknown) =>
      listener?.({ origin, source, data } as unknown as MessageEvent);
    send('http://127.0.0.1:1', popup, { ...outcome, outcome: 'denied' }); // another origin
    send(svc.url, {}, { ...outcome, outcome: 'failed' }); // another window of the service
    send(svc.url, popup, { ...outcome, integration: 'other' }); // another integration
    send(svc.url, popup, outcome);
    expect(await done).toEqual(outcome);
    expect(listener).toBeUndefined();
  });

  it('connect() outside a browser rejects with PopupError no_window; a blocked popup with blocked', async () => {
    await expect(client.connect('items')).rejects.toMatchObject({ reason: 'no_window' });
    const blocking = { open: () => null, addEventListener() {}, removeEventListener() {} };
    const blocked = await client.connect('items', { window: blocking }).catch((e: unknown) => e);
    expect(blocked).toBeInstanceOf(PopupError);
    expect((blocked as PopupError).reason).toBe('blocked');
  });
});

describe('the client module', () => {
  it('imports nothing at run time but its own files (no node: built-ins, no zod): it runs in browsers', () => {
    const files = readdirSync(clientDir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const source = readFileSync(join(clientDir, file), 'utf8');
      const js = ts.transpileModule(source, {
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
        },
      }).outputText;
      const specifiers = [...js.matchAll(/(?:import|export)[^'"]*from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
      expect(
        specifiers.filter((s) => !/^\.\/[a-z-]+\.js$/.test(s ?? '')),
        file,
      ).toEqual([]);
    }
  });
});
