import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { Clock } from '../support/clock.js';
import type { TokenService } from './token-service.js';

/**
 * Proactive refresh: picks connections whose `next_refresh_at` has come (an indexed range
 * query, a bounded batch, never the whole table), and refreshes them with bounded concurrency
 * per provider. Instances share the work through the per-connection lease: a connection another
 * instance is refreshing is skipped. Returns how many were refreshed.
 */
export async function runDueRefreshes(
  d: { store: Store; tokens: TokenService; clock: Clock; logger: Logger },
  options: { batchSize?: number; perProviderConcurrency?: number } = {},
): Promise<number> {
  const now = d.clock.now();
  const due = await d.store.db
    .selectFrom('connections')
    .innerJoin('integrations', 'integrations.id', 'connections.integration_id')
    .select(['connections.id', 'integrations.provider_id'])
    .where('connections.next_refresh_at', '<=', now)
    .where('connections.status', '=', 'active')
    .where('integrations.enabled', '=', 1)
    .where((eb) =>
      eb.or([eb('connections.lease_until', 'is', null), eb('connections.lease_until', '<', now)]),
    )
    .orderBy('connections.next_refresh_at')
    .limit(options.batchSize ?? 200)
    .execute();
  const byProvider = new Map<string, string[]>();
  for (const r of due) {
    const key = r.provider_id ?? '';
    byProvider.set(key, [...(byProvider.get(key) ?? []), r.id]);
  }
  let refreshed = 0;
  const perProvider = options.perProviderConcurrency ?? 4;
  await Promise.all(
    [...byProvider.values()].map(async (ids) => {
      const queue = [...ids];
      const worker = async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          try {
            if (await d.tokens.refreshScheduled(id)) refreshed++;
          } catch (error) {
            // Outcomes (needs_reauth, backoff) are already recorded on the connection.
            d.logger.debug(
              { connection: id, code: (error as { code?: string }).code },
              'scheduled refresh did not succeed',
            );
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(perProvider, ids.length) }, worker));
    }),
  );
  return refreshed;
}
