/**
 * Regression (issue 8, reliability 2): a connection whose sealed token does not open (tampered,
 * or sealed under a key that is no longer in the keyring) used to be retried every few seconds,
 * with an audit row and an error line each time, stayed `active`, made the proxy answer 500 and
 * was never reported to its owner. Now: one report per incident, `needs_reauth` with reason
 * `unreadable`, the owner told once (notification, SSE event, webhook), 409 from the proxy, and
 * Reconnect makes it usable again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import {
  burst,
  type EventStream,
  type Lifecycle,
  openEventStream,
  proxyPath,
  startLifecycle,
  waitUntil,
} from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { signedInAgent } from '../support/user-agent.js';
import { webhookEvents } from '../support/webhook-receiver.js';

const incidentMessage = 'sealed token does not open; the connection needs reconnecting';
/** The scheduler looks every 200 ms here: a loop would show as many reports within this time. */
const quietMs = 2_500;

describe.each(databaseKinds)('a connection whose token does not decrypt, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  const streams: EventStream[] = [];

  const db = () => svc.service.ctx.store.db;
  const hooks = (type: string, id: string) =>
    webhookEvents(lc.receiver.received).filter(
      (h) => h.event.type === type && h.event.data.connectionId === id,
    );
  const statusEvents = (stream: EventStream, id: string, status: string) =>
    stream.events.filter((e) => {
      if (e.event !== 'connection.status') return false;
      const data = JSON.parse(e.data) as { connectionId?: string; status?: string };
      return data.connectionId === id && data.status === status;
    });
  const auditRows = async (id: string, action: string) =>
    db()
      .selectFrom('audit_log')
      .selectAll()
      .where('target_id', '=', id)
      .where('action', '=', action)
      .execute();
  /** Error-level (and worse) lines about this connection, from every instance. */
  const errorLines = (id: string) =>
    lc.services
      .flatMap((s) => s.logs)
      .map((l) => JSON.parse(l) as { level: number; msg: string; connection?: string })
      .filter((l) => l.level >= 50 && l.connection === id);
  const openNotifications = async (svcAt: TestService, userId: string, id: string) => {
    const all = (await (await svcAt.api(userId, '/api/v1/notifications')).json()) as Array<{
      type: string;
      connectionId: string;
      resolvedAt: string | null;
      data: { reason?: string };
    }>;
    return all.filter((n) => n.type === 'connection.needs_reauth' && n.connectionId === id);
  };
  /**
   * Rewrites sealed columns of the row in one fenced UPDATE that also bumps the version, so a
   * refresh in flight cannot overwrite the damage with good tokens.
   */
  const damage = async (id: string, change: (sealed: string) => string, fields: string[]) => {
    for (;;) {
      const row = await db()
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const set: Record<string, unknown> = { version: row.version + 1 };
      for (const f of fields) set[f] = change((row as unknown as Record<string, string>)[f]!);
      const r = await db()
        .updateTable('connections')
        .set(set)
        .where('id', '=', id)
        .where('version', '=', row.version)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1) return;
    }
  };

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    svc = await lc.startService({ schedulerIntervalMs: 200 });
  });

  afterAll(async () => {
    for (const s of streams) s.close();
    await lc?.close();
  });

  async function expectReportedOnce(id: string, userId: string, keyCode: string) {
    await waitUntil(
      'needs_reauth',
      async () => (await lc.connection(svc, userId, id)).status === 'needs_reauth',
    );
    await lc.receiver.waitFor(() => hooks('connection.needs_reauth', id).length >= 1);
    // The scheduler runs every 200 ms and the proxy is called again: nothing is reported twice.
    const again = await burst(lc.services, userId, proxyPath(id), 10);
    expect(again.map((r) => r.status)).toEqual(Array(10).fill(409));
    await sleep(quietMs);

    const c = await lc.connection(svc, userId, id);
    expect(c).toMatchObject({ status: 'needs_reauth', statusReason: 'unreadable' });
    // Not retried: no refresh is scheduled for it any more.
    const row = await db()
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.next_refresh_at).toBeNull();

    const incidents = errorLines(id);
    expect(incidents.map((l) => l.msg)).toEqual([incidentMessage]);
    expect(incidents[0]).toMatchObject({ reason: keyCode });
    const decryptAudit = await auditRows(id, 'secret.decrypt_failed');
    expect(decryptAudit).toHaveLength(1);
    expect(JSON.parse(decryptAudit[0]!.data)).toMatchObject({ reason: keyCode });
    expect(await auditRows(id, 'connection.needs_reauth')).toHaveLength(1);

    const open = await openNotifications(svc, userId, id);
    expect(open).toHaveLength(1);
    expect(open[0]!.data.reason).toBe('unreadable');
    const delivered = hooks('connection.needs_reauth', id);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.event.data).toMatchObject({ connectionId: id, userId, reason: 'unreadable' });

    const proxied = await svc.api(userId, proxyPath(id));
    expect(proxied.status).toBe(409);
    expect(await proxied.json()).toMatchObject({
      code: 'connection_needs_reauth',
      reason: 'unreadable',
      connectionId: id,
    });

    // The Integrations page says why, in words the owner can act on.
    const ua = await signedInAgent(svc, userId);
    const page = await ua.get(`${svc.url}/`);
    expect(page.body).toContain(
      'needs reconnecting: the stored sign-in could not be read; reconnect to continue.',
    );
  }

  async function expectReconnectRestores(id: string, userId: string, login: string) {
    const { outcome, connection } = await lc.reconnect(svc, userId, id, login);
    expect(outcome).toBe('reconnected');
    expect(connection).toBe(id);
    expect(await lc.connection(svc, userId, id)).toMatchObject({ status: 'active', statusReason: null });
    const r = await svc.api(userId, proxyPath(id));
    expect(r.status).toBe(200);
    expect((await openNotifications(svc, userId, id)).filter((n) => n.resolvedAt === null)).toHaveLength(0);
  }

  it('a tampered refresh token, met by the scheduler: reported once, needs_reauth, owner told once; Reconnect restores it', async () => {
    const userId = 'u-tampered';
    const id = await lc.connect(svc, userId, 'alice');
    const stream = await openEventStream(svc, userId);
    streams.push(stream);
    // Flip one character in the middle of the ciphertext (still well-formed base64url).
    await damage(
      id,
      (sealed) => {
        const i = sealed.length - 30;
        return `${sealed.slice(0, i)}${sealed[i] === 'A' ? 'B' : 'A'}${sealed.slice(i + 1)}`;
      },
      ['refresh_token_sealed'],
    );
    // Due now: the scheduler meets it first.
    await db().updateTable('connections').set({ next_refresh_at: Date.now() }).where('id', '=', id).execute();

    await expectReportedOnce(id, userId, 'decrypt_failed');
    expect(statusEvents(stream, id, 'needs_reauth')).toHaveLength(1);
    expect(stream.events.filter((e) => e.event === 'notification')).toHaveLength(1);

    await expectReconnectRestores(id, userId, 'alice');
  });

  it('tokens under a key no longer in the keyring, met by the proxy on two instances: reported once; a new instance still starts', async () => {
    const userId = 'u-oldkey';
    const id = await lc.connect(svc, userId, 'bob');
    // Sealed under `k0`, a key the keyring does not have (removed before rotation finished).
    await damage(id, (sealed) => sealed.replace(/^v1\.k1\./, 'v1.k0.'), [
      'access_token_sealed',
      'refresh_token_sealed',
    ]);
    const svc2 = await lc.startService({ schedulerIntervalMs: 200 });
    const stream = await openEventStream(svc2, userId);
    streams.push(stream);

    const first = await burst([svc, svc2], userId, proxyPath(id), 20);
    expect(first.map((r) => r.status)).toEqual(Array(20).fill(409));
    for (const r of first) expect(JSON.parse(r.body)).toMatchObject({ code: 'connection_needs_reauth' });

    await expectReportedOnce(id, userId, 'key_unknown');
    await waitUntil('the needs_reauth SSE event', () => statusEvents(stream, id, 'needs_reauth').length >= 1);
    expect(statusEvents(stream, id, 'needs_reauth')).toHaveLength(1);

    await expectReconnectRestores(id, userId, 'bob');
    const rows = await db()
      .selectFrom('connections')
      .select([sql<string>`substr(access_token_sealed, 1, 6)`.as('prefix')])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(rows.prefix).toBe('v1.k1.');
  });
});
