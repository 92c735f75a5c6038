import type { DeleteResult, SelectQueryBuilder } from 'kysely';
import type { Clock } from '../support/clock.js';
import type { DatabaseKind, Store } from './database.js';

/** How long finished rows are kept, and how much one run may delete. */
export interface RetentionPolicy {
  /**
   * SSE events (`events`), by age. A browser replays what it missed with `Last-Event-ID` when
   * it reconnects (3 s after a drop); a tab asleep for longer than this misses the older events.
   */
  eventsHours: number;
  /** Delivered or given-up webhook deliveries, by creation (a delivery finishes within hours). */
  deliveriesDays: number;
  /** Resolved notifications, by resolution. Open ones, read or not, are kept. */
  notificationsDays: number;
  /** Finished revocations (done or given up), by when they finished. */
  revocationsDays: number;
  /** Rows per DELETE statement. */
  batchSize: number;
  /** Rows per table per run; the rest waits for the next run. */
  maxRowsPerRun: number;
}

export const defaultRetention: Readonly<RetentionPolicy> = Object.freeze({
  eventsHours: 24,
  deliveriesDays: 30,
  notificationsDays: 30,
  revocationsDays: 30,
  batchSize: 5_000,
  maxRowsPerRun: 100_000,
});

export const prunedTables = ['events', 'webhook_deliveries', 'notifications', 'revocations'] as const;
export type PrunedTable = (typeof prunedTables)[number];
/** Rows deleted per table by one run. `audit_log` is never pruned: it is append-only by design. */
export type PruneCounts = Record<PrunedTable, number>;

const hour = 60 * 60 * 1000;
const day = 24 * hour;

/**
 * Deletes rows that are finished and older than the policy's periods, in bounded batches.
 * Each rule selects only finished rows, so work in progress (a pending or leased delivery or
 * revocation, an open notification) is never touched, whatever its age. Any number of
 * instances may run it at once: every statement is a plain conditional DELETE (on PostgreSQL
 * the batch skips rows another run holds), and a row is counted by the run that deleted it.
 */
export async function pruneExpired(
  deps: { store: Pick<Store, 'db' | 'kind'>; clock: Clock },
  policy: Partial<RetentionPolicy> = {},
): Promise<PruneCounts> {
  const p = resolvePolicy(policy);
  const now = deps.clock.now();
  const db = deps.store.db;
  const skipLocked = skipLockedOn(deps.store.kind);

  // The newest event is always kept: SQLite gives a new row max(id) + 1, so emptying the table
  // would hand out ids again that open streams and Last-Event-ID cursors have already passed.
  const newestEvent = db.selectFrom('events').select((eb) => eb.fn.max('id').as('newest'));

  const batches: Record<PrunedTable, (limit: number) => Promise<DeleteResult>> = {
    events: (limit) =>
      db
        .deleteFrom('events')
        .where(
          'id',
          'in',
          db
            .selectFrom('events')
            .select('id')
            .where('created_at', '<', now - p.eventsHours * hour)
            .where('id', '<', newestEvent)
            .limit(limit)
            .$call(skipLocked),
        )
        .executeTakeFirstOrThrow(),
    webhook_deliveries: (limit) =>
      db
        .deleteFrom('webhook_deliveries')
        .where(
          'id',
          'in',
          db
            .selectFrom('webhook_deliveries')
            .select('id')
            .where('status', 'in', ['delivered', 'failed'])
            .where('created_at', '<', now - p.deliveriesDays * day)
            .where('lease_until', 'is', null)
            .limit(limit)
            .$call(skipLocked),
        )
        .executeTakeFirstOrThrow(),
    notifications: (limit) =>
      db
        .deleteFrom('notifications')
        .where(
          'id',
          'in',
          db
            .selectFrom('notifications')
            .select('id')
            .where('resolved_at', '<', now - p.notificationsDays * day)
            .limit(limit)
            .$call(skipLocked),
        )
        .executeTakeFirstOrThrow(),
    revocations: (limit) =>
      db
        .deleteFrom('revocations')
        .where(
          'id',
          'in',
          db
            .selectFrom('revocations')
            .select('id')
            .where('done_at', '<', now - p.revocationsDays * day)
            .where('lease_until', 'is', null)
            .limit(limit)
            .$call(skipLocked),
        )
        .executeTakeFirstOrThrow(),
  };

  const counts = { events: 0, webhook_deliveries: 0, notifications: 0, revocations: 0 };
  for (const table of prunedTables) counts[table] = await drain(batches[table], p);
  return counts;
}

/** Runs batches until one comes back short (nothing left, or another run holds the rest) or the cap is hit. */
async function drain(
  batch: (limit: number) => Promise<DeleteResult>,
  p: Pick<RetentionPolicy, 'batchSize' | 'maxRowsPerRun'>,
): Promise<number> {
  let deleted = 0;
  while (deleted < p.maxRowsPerRun) {
    const limit = Math.min(p.batchSize, p.maxRowsPerRun - deleted);
    const n = Number((await batch(limit)).numDeletedRows);
    deleted += n;
    if (n === 0 || n < limit) break;
  }
  return deleted;
}

/**
 * On PostgreSQL a batch skips rows that a concurrent run has already locked, so two runs never
 * wait on each other's rows (nor deadlock); SQLite has a single writer and needs nothing.
 */
function skipLockedOn(kind: DatabaseKind) {
  return <DB, TB extends keyof DB, O>(qb: SelectQueryBuilder<DB, TB, O>) =>
    kind === 'postgres' ? qb.forUpdate().skipLocked() : qb;
}

/** Fills in defaults; a key given as `undefined` (an absent config field) counts as not given. */
function resolvePolicy(policy: Partial<RetentionPolicy>): RetentionPolicy {
  const pick = <K extends keyof RetentionPolicy>(key: K) => policy[key] ?? defaultRetention[key];
  return {
    eventsHours: pick('eventsHours'),
    deliveriesDays: pick('deliveriesDays'),
    notificationsDays: pick('notificationsDays'),
    revocationsDays: pick('revocationsDays'),
    batchSize: Math.max(1, pick('batchSize')),
    maxRowsPerRun: pick('maxRowsPerRun'),
  };
}
