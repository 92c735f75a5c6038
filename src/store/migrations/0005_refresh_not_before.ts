import type { Kysely } from 'kysely';

/**
 * Two columns for the refresh path (`src/store/repos/connections.ts`):
 * - `refresh_not_before`: no token request for this connection before this time, because the
 *   provider said so (a `Retry-After`, or a throttling answer such as Entra's AADSTS50196); every
 *   instance and every refresh path (scheduled or on demand) honours it.
 * - `lease_taken_from`: the holder whose expired refresh lease the current holder took over (null
 *   when the lease was free), written by the same UPDATE that takes the lease, so the taker knows
 *   that a refresh may have been interrupted without another round trip.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').addColumn('refresh_not_before', 'bigint').execute();
  await db.schema.alterTable('connections').addColumn('lease_taken_from', 'text').execute();
}
