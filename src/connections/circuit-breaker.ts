import type { Clock } from '../support/clock.js';

/**
 * A per-provider circuit breaker: after `threshold` consecutive transient failures it opens for
 * `openMs` (doubling on each re-open, capped at `maxOpenMs`), during which refreshes fail fast
 * without calling the provider; then one trial call decides. Local to an instance by design:
 * it only saves a down provider from being hammered, correctness never depends on it.
 */
export class CircuitBreakers {
  readonly #state = new Map<string, { failures: number; openUntil: number; opens: number; trial: boolean }>();
  readonly #clock: Clock;
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #maxOpenMs: number;

  constructor(clock: Clock, options: { threshold?: number; openMs?: number; maxOpenMs?: number } = {}) {
    this.#clock = clock;
    this.#threshold = options.threshold ?? 5;
    this.#openMs = options.openMs ?? 5_000;
    // Capped low: the breaker also delays recovery, by at most this long after the provider is back.
    this.#maxOpenMs = options.maxOpenMs ?? 30_000;
  }

  /** Whether a call may go to the provider now; in half-open state only one trial at a time. */
  allow(provider: string): boolean {
    const s = this.#state.get(provider);
    if (s === undefined || s.openUntil === 0) return true;
    if (this.#clock.now() < s.openUntil || s.trial) return false;
    s.trial = true;
    return true;
  }

  /** Milliseconds until the breaker lets a trial through (0 when closed). */
  retryInMs(provider: string): number {
    const s = this.#state.get(provider);
    return s === undefined ? 0 : Math.max(0, s.openUntil - this.#clock.now());
  }

  success(provider: string): void {
    this.#state.delete(provider);
  }

  failure(provider: string): void {
    const s = this.#state.get(provider) ?? { failures: 0, openUntil: 0, opens: 0, trial: false };
    s.failures++;
    s.trial = false;
    if (s.failures >= this.#threshold) {
      s.opens++;
      s.openUntil = this.#clock.now() + Math.min(this.#maxOpenMs, this.#openMs * 2 ** (s.opens - 1));
    }
    this.#state.set(provider, s);
  }
}
