import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import {
  burst,
  type EventStream,
  itemsIntegration,
  type Lifecycle,
  lifecycleWebhookSecret,
  openEventStream,
  proxyPath,
  startLifecycle,
  waitUntil,
} from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { verifyWebhookSignature, webhookEvents } from '../support/webhook-receiver.js';

/** Long enough for a duplicate to show: the SSE stream polls every 1 s, webhooks are delivered every 1 s. */
const quietMs = 2_500;

describe.each(databaseKinds)('a revoked grant becomes needs_reauth exactly once, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let id: string;
  let stream: EventStream;

  const hooks = (type: string) =>
    webhookEvents(lc.receiver.received).filter(
      (h) => h.event.type === type && h.event.data.connectionId === id,
    );
  const statusEvents = (status: string) =>
    stream.events.filter((e) => {
      if (e.event !== 'connection.status') return false;
      const data = JSON.parse(e.data) as { connectionId?: string; status?: string };
      return data.connectionId === id && data.status === status;
    });

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    // Webhook delivery runs every second; the scheduler is slowed down so that the calls refresh.
    svc = await lc.startService({ schedulerIntervalMs: 600_000 });
    id = await lc.connect(svc, 'u-alice');
    await lc.receiver.waitFor(() => hooks('connection.created').length === 1);
    stream = await openEventStream(svc, 'u-alice');
  });

  afterAll(async () => {
    stream?.close();
    await lc?.close();
  });

  it('revoked at the provider + expiry + 50 concurrent calls: one transition, one notification, one event, one webhook', async () => {
    expect(await lc.oidc.revokeGrants()).toBeGreaterThanOrEqual(1);
    await lc.waitForExpiry(svc, 'u-alice', id);
    const refreshesBefore = lc.refreshCount();

    const results = await burst([svc], 'u-alice', proxyPath(id), 50);
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(409));
    for (const r of results) {
      const problem = JSON.parse(r.body);
      expect(problem).toMatchObject({ status: 409, code: 'connection_needs_reauth', connectionId: id });
      expect(problem.reconnectUrl).toBe(`${svc.url}/connect/${itemsIntegration}`);
    }
    const one = await svc.api('u-alice', proxyPath(id));
    expect(one.status).toBe(409);
    expect(one.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await one.json()).code).toBe('connection_needs_reauth');
    // One refresh tried, and rejected; nothing retried it after the transition.
    expect(lc.refreshCount()).toBe(refreshesBefore + 1);
    expect(lc.tokenCalls.filter((c) => c.grantType === 'refresh_token').at(-1)?.status).toBe(400);

    const c = await lc.connection(svc, 'u-alice', id);
    expect(c.status).toBe('needs_reauth');

    // The webhook and the SSE events arrive; then a quiet period shows there is no second one.
    await lc.receiver.waitFor(() => hooks('connection.needs_reauth').length >= 1);
    await waitUntil('the needs_reauth SSE event', () => statusEvents('needs_reauth').length >= 1);
    await sleep(quietMs);

    const notifications = (await (await svc.api('u-alice', '/api/v1/notifications')).json()) as Array<{
      id: string;
      type: string;
      connectionId: string;
      resolvedAt: string | null;
    }>;
    const mine = notifications.filter((n) => n.type === 'connection.needs_reauth' && n.connectionId === id);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.resolvedAt).toBeNull();

    expect(statusEvents('needs_reauth')).toHaveLength(1);
    const notified = stream.events.filter((e) => e.event === 'notification');
    expect(notified).toHaveLength(1);
    expect(JSON.parse(notified[0]!.data)).toMatchObject({
      id: mine[0]!.id,
      type: 'connection.needs_reauth',
      connectionId: id,
    });

    const delivered = hooks('connection.needs_reauth');
    expect(delivered).toHaveLength(1);
    const { event, request } = delivered[0]!;
    expect(request.url).toBe('/hooks/nunq');
    expect(request.headers['content-type']).toMatch(/^application\/json/);
    expect(verifyWebhookSignature(request, lifecycleWebhookSecret)).toMatchObject({ ok: true });
    // A signature made with any other secret does not verify (the check itself can fail).
    expect(verifyWebhookSignature(request, `${lifecycleWebhookSecret}x`)).toMatchObject({ ok: false });
    expect(event).toMatchObject({
      type: 'connection.needs_reauth',
      data: { connectionId: id, userId: 'u-alice', integration: itemsIntegration },
    });
    expect(typeof event.data.reason).toBe('string');
    expect(Number.isNaN(Date.parse(event.createdAt))).toBe(false);
  });

  it('Reconnect restores the same connection id to active, resolves the notification, sends connection.reconnected', async () => {
    const { outcome, connection } = await lc.reconnect(svc, 'u-alice', id);
    expect(outcome).toBe('reconnected');
    expect(connection).toBe(id);

    const c = await lc.connection(svc, 'u-alice', id);
    expect(c.status).toBe('active');
    const all = (await (await svc.api('u-alice', '/api/v1/connections')).json()) as Array<{ id: string }>;
    expect(all.map((x) => x.id)).toEqual([id]);

    const notifications = (await (await svc.api('u-alice', '/api/v1/notifications')).json()) as Array<{
      type: string;
      connectionId: string;
      resolvedAt: string | null;
    }>;
    const mine = notifications.filter((n) => n.type === 'connection.needs_reauth' && n.connectionId === id);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.resolvedAt).not.toBeNull();

    await lc.receiver.waitFor(() => hooks('connection.reconnected').length >= 1);
    await waitUntil('the active SSE event', () => statusEvents('active').length >= 1);
    await sleep(quietMs);
    const reconnected = hooks('connection.reconnected');
    expect(reconnected).toHaveLength(1);
    expect(verifyWebhookSignature(reconnected[0]!.request, lifecycleWebhookSecret)).toMatchObject({
      ok: true,
    });
    expect(reconnected[0]!.event.data).toMatchObject({ connectionId: id, userId: 'u-alice' });
    expect(hooks('connection.needs_reauth')).toHaveLength(1);
    expect(statusEvents('active')).toHaveLength(1);

    const r = await svc.api('u-alice', proxyPath(id));
    expect(r.status).toBe(200);
    expect((await r.json()).items).toHaveLength(3);
  });
});
