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

export interface DueRefreshOptions {
  /** Rows per claim (one UPDATE … RETURNING). */
  batchSize?: number;
  /** Token requests in flight per provider. */
  perProviderConcurrency?: number;
  /** Refreshes running per token-request slot (default `workersPerSlot`). */
  refreshesPerSlot?: number;
  /** Stop claiming once this many rows were claimed in this run (what is claimed is still refreshed). */
  maxRows?: number;
  /** Stop claiming after this long; a storm then goes on in the next run. */
  budgetMs?: number;
  /** Stop claiming (the service is stopping); what is claimed is still refreshed. */
  signal?: AbortSignal;
}

/**
 * Refreshes run per token-request slot: besides the one asking the provider, the others seal,
 * wait for their grouped write (a scheduled write waits up to `scheduledWriteWindowMs` for
 * others to join it) or release their lease, so the provider is never kept waiting by our
 * database work. A refresh spends a few ms on its token request and up to the 60 ms window on
 * its write, so a slot needs a score of refreshes: with 8, one instance reached only 0.51–0.63×
 * the bare grant rate (docs/benchmarks.md, Refresh storm).
 */
const workersPerSlot = 24;

/** The rows of one provider waiting for a worker, and its workers and token-request slots. */
interface Lane {
  queue: ClaimedRow[];
  workers: number;
  slot: () => Promise<() => void>;
}

/**
 * Proactive refresh: claims a bounded batch of connections whose `next_refresh_at` has come (one
 * indexed UPDATE … RETURNING takes their leases at once, never a scan of the whole table), and
 * refreshes them with at most `perProviderConcurrency` token requests in flight per provider
 * (more refreshes run, so that their database writes overlap the token requests).
 * While claims come back full (a storm: more is due than one batch), the next batch is claimed
 * as the current one runs low, so the providers never wait for a claim, until nothing more is
 * due, `maxRows`, `budgetMs` or `signal`. Instances share the work through the leases: a
 * connection another instance holds is not claimed. Returns how many were refreshed.
 */
export async function runDueRefreshes(
  d: { store?: Store; tokens: TokenService; clock: Clock; logger: Logger },
  options: DueRefreshOptions = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 200;
  const perProvider = options.perProviderConcurrency ?? 4;
  const perSlot = options.refreshesPerSlot ?? workersPerSlot;
  const maxRows = options.maxRows ?? Number.POSITIVE_INFINITY;
  const deadline = d.clock.now() + (options.budgetMs ?? 60_000);
  // The next batch is claimed when this few rows are left unstarted: enough to keep every
  // provider's requests going for the claim's round trip.
  const lowWater = Math.max(perProvider * 4, Math.floor(batchSize / 4));
  const lanes = new Map<string, Lane>();
  const running = new Set<Promise<void>>();
  let refreshed = 0;
  let claimedRows = 0;
  let unstarted = 0;
  let more = true;
  let claiming = false;
  let claimError: unknown;

  const track = (work: Promise<void>) => {
    running.add(work);
    void work.finally(() => running.delete(work));
  };
  const mayClaim = () =>
    more &&
    !claiming &&
    claimedRows < maxRows &&
    options.signal?.aborted !== true &&
    d.clock.now() < deadline;

  const worker = async (lane: Lane) => {
    for (let row = lane.queue.shift(); row !== undefined; row = lane.queue.shift()) {
      unstarted--;
      if (unstarted <= lowWater && mayClaim()) track(claim());
      try {
        if (await d.tokens.refreshClaimed(row, lane.slot)) refreshed++;
      } catch (error) {
        // Outcomes (needs_reauth, backoff) are already recorded on the connection.
        d.logger.debug(
          { connection: row.id, code: (error as { code?: string }).code },
          'scheduled refresh did not succeed',
        );
      }
    }
    lane.workers--;
  };

  const claim = async () => {
    claiming = true;
    try {
      const due = await d.tokens.claimDueRefreshes(Math.min(batchSize, maxRows - claimedRows));
      claimedRows += due.length;
      more = due.length === batchSize;
      unstarted += due.length;
      for (const row of due) {
        const key = row.provider_id ?? '';
        let lane = lanes.get(key);
        if (lane === undefined) {
          lane = { queue: [], workers: 0, slot: slots(perProvider) };
          lanes.set(key, lane);
        }
        lane.queue.push(row);
      }
      for (const lane of lanes.values()) {
        const start = Math.min(perProvider * perSlot - lane.workers, lane.queue.length);
        for (let i = 0; i < start; i++) {
          lane.workers++;
          track(worker(lane));
        }
      }
    } catch (error) {
      // The first claim's failure is the run's; a later one ends the claiming, and the rows
      // already claimed are still refreshed before it is reported.
      more = false;
      claimError ??= error;
    } finally {
      claiming = false;
    }
    // The workers took so much of the batch at once that it is already low.
    if (unstarted <= lowWater && mayClaim()) track(claim());
  };

  if (options.signal?.aborted === true) return 0;
  track(claim());
  while (running.size > 0) await Promise.all(running);
  if (claimError !== undefined && claimedRows === 0) throw claimError;
  if (claimError !== undefined) {
    d.logger.warn({ err: claimError, refreshed }, 'refresh claim failed; the rest waits for the next run');
  }
  return refreshed;
}
