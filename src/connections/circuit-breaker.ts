import type { Clock } from '../support/clock.js';

export interface CircuitBreakerOptions {
  /** Consecutive transient failures of a provider before the breaker opens (default 5). */
  threshold?: number;
  /**
   * While open, one probe call is let through this often (default 1 s), so that the first call
   * after the provider is back comes within about this long; every other call fails fast.
   */
  openMs?: number;
  /** The longest a provider's `Retry-After` may keep the breaker from probing (default 5 min). */
  maxOpenMs?: number;
}

interface BreakerState {
  failures: number;
  /** When the next probe may go; 0 while closed. */
  probeAt: number;
}

/**
 * A per-provider circuit breaker: after `threshold` consecutive transient failures it opens, and
 * refreshes then fail fast without calling the provider, except one probe per `openMs` (or after
 * the provider's `Retry-After`, when it gave one). A successful call closes it. Local to an
 * instance by design: it only saves a down provider from being hammered, correctness never
 * depends on it.
 */
export class CircuitBreakers {
  readonly #state = new Map<string, BreakerState>();
  readonly #clock: Clock;
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #maxOpenMs: number;

  constructor(clock: Clock, options: CircuitBreakerOptions = {}) {
    this.#clock = clock;
    this.#threshold = options.threshold ?? 5;
    this.#openMs = options.openMs ?? 1_000;
    this.#maxOpenMs = options.maxOpenMs ?? 5 * 60_000;
  }

  /** Whether a call may go to the provider now: always while closed; while open, one probe per interval. */
  allow(provider: string): boolean {
    const s = this.#state.get(provider);
    if (s === undefined || s.probeAt === 0) return true;
    const now = this.#clock.now();
    if (now < s.probeAt) return false;
    // This call is the probe; the next one waits an interval (or what its failure says).
    s.probeAt = now + this.#openMs;
    return true;
  }

  /** Milliseconds until the breaker lets the next probe through (0 when it would let one through now). */
  retryInMs(provider: string): number {
    const s = this.#state.get(provider);
    return s === undefined ? 0 : Math.max(0, s.probeAt - this.#clock.now());
  }

  /** A call went through and the provider answered (or the failure was not the provider's): close. */
  success(provider: string): void {
    this.#state.delete(provider);
  }

  /** A transient failure; `retryAfterMs` is the provider's `Retry-After`, when it gave one. */
  failure(provider: string, retryAfterMs?: number): void {
    const s = this.#state.get(provider) ?? { failures: 0, probeAt: 0 };
    s.failures++;
    if (s.failures >= this.#threshold) {
      const wait = retryAfterMs === undefined ? this.#openMs : Math.min(this.#maxOpenMs, retryAfterMs);
      s.probeAt = Math.max(s.probeAt, this.#clock.now() + wait);
    }
    this.#state.set(provider, s);
  }
}
