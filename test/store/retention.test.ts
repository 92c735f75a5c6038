import { randomUUID } from 'node:crypto';
import type { Insertable, KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Notifications } from '../../src/notify/notifications.js';
import { openStore, type Store } from '../../src/store/database.js';
import { pruneExpired } from '../../src/store/retention.js';
import type { NotificationsTable, RevocationsTable, WebhookDeliveriesTable } from '../../src/store/types.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

const hour = 60 * 60 * 1000;
const day = 24 * hour;
const now = Date.UTC(2026, 0, 31, 12, 0, 0);
const clock = { now: () => now };

function delivery(
  id: string,
  status: WebhookDeliveriesTable['status'],
  createdAt: number,
  leaseUntil: number | null = null,
): Insertable<WebhookDeliveriesTable> {
  return {
    id,
    endpoint_id: 'ep1',
    event_id: randomUUID(),
    event_type: 'connection.created',
    payload: '{}',
    status,
    attempts: status === 'failed' ? 12 : 1,
    next_attempt_at: status === 'pending' ? createdAt : null,
    lease_until: leaseUntil,
    last_status: null,
    last_error: null,
    created_at: createdAt,
    delivered_at: status === 'delivered' ? createdAt + 1000 : null,
  };
}

function notification(
  id: string,
  createdAt: number,
  readAt: number | null,
  resolvedAt: number | null,
): Insertable<NotificationsTable> {
  return {
    id,
    user_id: 'u1',
    type: 'connection.needs_reauth',
    connection_id: 'c1',
    data: '{}',
    created_at: createdAt,
    read_at: readAt,
    resolved_at: resolvedAt,
  };
}

function revocation(
  id: string,
  createdAt: number,
  doneAt: number | null,
  leaseUntil: number | null = null,
): Insertable<RevocationsTable> {
  return {
    id,
    provider_id: 'p1',
    connection_id: 'c1',
    token_sealed: doneAt === null ? 'v1.k1.sealed' : null,
    token_type_hint: 'refresh_token',
    attempts: doneAt === null ? 3 : 10,
    next_attempt_at: doneAt === null ? createdAt + hour : null,
    lease_until: leaseUntil,
    last_error: doneAt === null ? 'transient' : null,
    created_at: createdAt,
    done_at: doneAt,
  };
}

/** Inserts `count` events for `user` created at `at`, in chunks the drivers accept. */
async function seedEvents(store: Store, count: number, at: number, user = 'u1'): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - i) }, () => ({
      user_id: user,
      type: 'notification',
      data: '{}',
      created_at: at,
    }));
    await store.db.insertInto('events').values(rows).execute();
  }
}

async function seedDeliveries(store: Store, count: number, at: number): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - i) }, () =>
      delivery(randomUUID(), 'delivered', at),
    );
    await store.db.insertInto('webhook_deliveries').values(rows).execute();
  }
}

async function ids(store: Store, table: 'webhook_deliveries' | 'notifications' | 'revocations') {
  const rows = await store.db.selectFrom(table).select('id').execute();
  return rows.map((r) => r.id).sort();
}

async function count(store: Store, table: 'events' | 'webhook_deliveries' | 'audit_log'): Promise<number> {
  const row = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The store with every statement's affected-row count recorded, to see the batches. */
function recording(store: Store): { store: Store; affected: number[] } {
  const affected: number[] = [];
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      if (args.result.numAffectedRows !== undefined) affected.push(Number(args.result.numAffectedRows));
      return args.result;
    },
  };
  return { store: { ...store, db: store.db.withPlugin(plugin) }, affected };
}

describe.each(databaseKinds)('data retention on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });
  beforeEach(async () => {
    for (const table of ['events', 'webhook_deliveries', 'notifications', 'revocations'] as const) {
      await store.db.deleteFrom(table).execute();
    }
  });

  it('deletes finished rows past their period and keeps work in progress, recent rows and the audit log', async () => {
    await store.db
      .insertInto('events')
      .values([
        { user_id: 'u1', type: 'old', data: '{}', created_at: now - 25 * hour },
        { user_id: 'u2', type: 'old', data: '{}', created_at: now - 24 * hour - 1 },
        { user_id: 'u1', type: 'kept', data: '{}', created_at: now - 24 * hour },
        { user_id: 'u2', type: 'kept', data: '{}', created_at: now - 23 * hour },
      ])
      .execute();
    await store.db
      .insertInto('webhook_deliveries')
      .values([
        delivery('d-delivered-old', 'delivered', now - 31 * day),
        delivery('d-failed-old', 'failed', now - 31 * day),
        delivery('d-pending-old', 'pending', now - 31 * day),
        delivery('d-leased-old', 'pending', now - 31 * day, now + 60_000),
        delivery('d-delivered-recent', 'delivered', now - 29 * day),
        delivery('d-failed-recent', 'failed', now - 29 * day),
      ])
      .execute();
    await store.db
      .insertInto('notifications')
      .values([
        notification('n-resolved-old', now - 90 * day, null, now - 31 * day),
        notification('n-read-resolved-old', now - 90 * day, now - 80 * day, now - 31 * day),
        notification('n-resolved-recent', now - 90 * day, null, now - 29 * day),
        notification('n-read-open-old', now - 90 * day, now - 80 * day, null),
        notification('n-open-old', now - 90 * day, null, null),
      ])
      .execute();
    await store.db
      .insertInto('revocations')
      .values([
        revocation('r-done-old', now - 32 * day, now - 31 * day),
        revocation('r-given-up-old', now - 40 * day, now - 31 * day),
        revocation('r-done-recent', now - 40 * day, now - 29 * day),
        revocation('r-pending-old', now - 60 * day, null),
        revocation('r-leased-old', now - 60 * day, null, now + 60_000),
      ])
      .execute();
    await store.db
      .insertInto('audit_log')
      .values({
        at: now - 400 * day,
        actor: 'test',
        action: 'ancient',
        target_type: null,
        target_id: null,
        data: '{}',
      })
      .execute();
    const auditBefore = await count(store, 'audit_log');

    expect(await pruneExpired({ store, clock })).toEqual({
      events: 2,
      webhook_deliveries: 2,
      notifications: 2,
      revocations: 2,
    });

    const events = await store.db.selectFrom('events').select('type').orderBy('id').execute();
    expect(events.map((e) => e.type)).toEqual(['kept', 'kept']);
    expect(await ids(store, 'webhook_deliveries')).toEqual([
      'd-delivered-recent',
      'd-failed-recent',
      'd-leased-old',
      'd-pending-old',
    ]);
    expect(await ids(store, 'notifications')).toEqual(['n-open-old', 'n-read-open-old', 'n-resolved-recent']);
    expect(await ids(store, 'revocations')).toEqual(['r-done-recent', 'r-leased-old', 'r-pending-old']);
    expect(await count(store, 'audit_log')).toBe(auditBefore);
  });

  it('takes its periods from the policy', async () => {
    await seedEvents(store, 1, now - 25 * hour);
    await seedEvents(store, 1, now - 49 * hour);
    await seedEvents(store, 1, now);
    await store.db
      .insertInto('notifications')
      .values([
        notification('n-8-days', now - 9 * day, null, now - 8 * day),
        notification('n-6-days', now - 9 * day, null, now - 6 * day),
      ])
      .execute();

    const counts = await pruneExpired({ store, clock }, { eventsHours: 48, notificationsDays: 7 });

    expect(counts).toEqual({ events: 1, webhook_deliveries: 0, notifications: 1, revocations: 0 });
    expect(await count(store, 'events')).toBe(2);
    expect(await ids(store, 'notifications')).toEqual(['n-6-days']);
  });

  // SQLite numbers a new row max(id) + 1: an emptied table would reuse ids that open streams and
  // Last-Event-ID cursors have passed, and those clients would never see the new events.
  it('keeps the newest event, so event ids never go back', async () => {
    await seedEvents(store, 3, now - 48 * hour);
    const newest = await store.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirstOrThrow();

    expect((await pruneExpired({ store, clock })).events).toBe(2);

    const left = await store.db.selectFrom('events').select('id').execute();
    expect(left.map((e) => Number(e.id))).toEqual([Number(newest.id)]);
    await new Notifications(store.db, clock).publish(store.db, 'u1', 'notification', {});
    const next = await new Notifications(store.db, clock).eventsAfter('u1', Number(newest.id));
    expect(next).toHaveLength(1);
  });

  it('deletes in batches of at most 5,000 rows until nothing is left', async () => {
    await seedEvents(store, 12_001, now - 48 * hour);
    await seedEvents(store, 1, now);
    await seedDeliveries(store, 5_000, now - 60 * day);
    const spy = recording(store);

    const counts = await pruneExpired({ store: spy.store, clock });

    expect(counts).toMatchObject({ events: 12_001, webhook_deliveries: 5_000 });
    expect(Math.max(...spy.affected)).toBe(5_000);
    // events: 5,000 + 5,000 + 2,001; deliveries: a full batch, then an empty one to find the end.
    expect(spy.affected.filter((n) => n > 0)).toEqual([5_000, 5_000, 2_001, 5_000]);
    expect(await count(store, 'events')).toBe(1);
    expect(await count(store, 'webhook_deliveries')).toBe(0);
  });

  it('stops at the per-run cap and leaves the rest for the next run', async () => {
    await seedDeliveries(store, 400, now - 60 * day);
    const policy = { batchSize: 100, maxRowsPerRun: 250 };

    expect((await pruneExpired({ store, clock }, policy)).webhook_deliveries).toBe(250);
    expect(await count(store, 'webhook_deliveries')).toBe(150);
    expect((await pruneExpired({ store, clock }, policy)).webhook_deliveries).toBe(150);
    expect(await count(store, 'webhook_deliveries')).toBe(0);
  });

  it('lets two instances prune at once without failing or counting a row twice', async () => {
    await seedEvents(store, 8_000, now - 48 * hour);
    await seedEvents(store, 1, now);
    await seedDeliveries(store, 8_000, now - 60 * day);
    const other = openStore(database.url);
    try {
      const policy = { batchSize: 500 };
      const runs = await Promise.all([
        pruneExpired({ store, clock }, policy),
        pruneExpired({ store: other, clock }, policy),
        pruneExpired({ store, clock }, policy),
      ]);

      expect(runs.reduce((sum, r) => sum + r.events, 0)).toBe(8_000);
      expect(runs.reduce((sum, r) => sum + r.webhook_deliveries, 0)).toBe(8_000);
      expect(await count(store, 'events')).toBe(1);
      expect(await count(store, 'webhook_deliveries')).toBe(0);
    } finally {
      await other.close();
    }
  });
});
