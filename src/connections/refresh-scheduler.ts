import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { Clock } from '../support/clock.js';
import type { ClaimedRow, TokenService } from './token-service.js';

/** A counting semaphore: `take()` resolves with a release once one of `permits` is free. */
function slots(permits: number): () => Promise<() => void> {
  let free = permits;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next === undefined) free++;
    else next();
  };
  return () => {
    if (free > 0) {
      free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve) => waiting.push(() => resolve(release)));
  };
}

/**
 * Proactive refresh: claims a bounded batch of connections whose `next_refresh_at` has come (one
 * indexed UPDATE … RETURNING takes their leases at once, never a scan of the whole table), and
 * refreshes them with at most `perProviderConcurrency` token requests in flight per provider;
 * twice as many refreshes run, so that one's database write overlaps another's token request.
 * Instances share the work through the leases: a connection another instance holds is not
 * claimed. Returns how many were refreshed.
 */
export async function runDueRefreshes(
  d: { store?: Store; tokens: TokenService; clock: Clock; logger: Logger },
  options: { batchSize?: number; perProviderConcurrency?: number } = {},
): Promise<number> {
  const due = await d.tokens.claimDueRefreshes(options.batchSize ?? 200);
  const byProvider = new Map<string, ClaimedRow[]>();
  for (const row of due) {
    const key = row.provider_id ?? '';
    const queue = byProvider.get(key);
    if (queue === undefined) byProvider.set(key, [row]);
    else queue.push(row);
  }
  let refreshed = 0;
  const perProvider = options.perProviderConcurrency ?? 4;
  await Promise.all(
    [...byProvider.values()].map(async (queue) => {
      const providerSlot = slots(perProvider);
      const worker = async () => {
        for (let row = queue.shift(); row !== undefined; row = queue.shift()) {
          try {
            if (await d.tokens.refreshClaimed(row, providerSlot)) refreshed++;
          } catch (error) {
            // Outcomes (needs_reauth, backoff) are already recorded on the connection.
            d.logger.debug(
              { connection: row.id, code: (error as { code?: string }).code },
              'scheduled refresh did not succeed',
            );
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(perProvider * 2, queue.length) }, worker));
    }),
  );
  return refreshed;
}
