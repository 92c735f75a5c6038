import { type Kysely, sql } from 'kysely';

/**
 * Indexes for data retention (`src/store/retention.ts`), so each bounded DELETE finds its expired
 * rows by an index range instead of scanning a table that holds a day to a month of rows.
 * `revocations` gets none: it holds only revocations that failed at Disconnect, a few rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('events_by_age').on('events').columns(['created_at']).execute();
  await db.schema
    .createIndex('webhook_deliveries_by_status_age')
    .on('webhook_deliveries')
    .columns(['status', 'created_at'])
    .execute();
  await db.schema
    .createIndex('notifications_resolved')
    .on('notifications')
    .columns(['resolved_at'])
    .where(sql.ref('resolved_at'), 'is not', null)
    .execute();
}
