import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../../src/connections/circuit-breaker.js';

/** One step of a breaker's life, at a time on the fake clock. */
type Step =
  | { at: number; allow: boolean; retryInMs?: number }
  | { at: number; fail: true; retryAfterMs?: number }
  | { at: number; succeed: true };

function run(steps: Step[], options: { threshold?: number; openMs?: number; maxOpenMs?: number } = {}) {
  let now = 0;
  const breakers = new CircuitBreakers({ now: () => now }, { threshold: 3, ...options });
  for (const [i, step] of steps.entries()) {
    now = step.at;
    if ('allow' in step) {
      const retryIn = breakers.retryInMs('p');
      expect(breakers.allow('p'), `step ${i} at ${step.at} ms: allow`).toBe(step.allow);
      if (step.retryInMs !== undefined) expect(retryIn, `step ${i}: retryInMs`).toBe(step.retryInMs);
    } else if ('fail' in step) {
      breakers.failure('p', step.retryAfterMs);
    } else {
      breakers.success('p');
    }
  }
  return breakers;
}

const fail = (at: number, retryAfterMs?: number): Step => ({
  at,
  fail: true,
  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
});

describe('CircuitBreakers (fake clock)', () => {
  const table: Array<[string, Step[]]> = [
    [
      'closed: every call goes through',
      [
        { at: 0, allow: true },
        { at: 1, allow: true },
      ],
    ],
    ['below the threshold: still closed', [fail(0), fail(10), { at: 20, allow: true, retryInMs: 0 }]],
    [
      'at the threshold: open, calls fail fast until the probe interval (1 s)',
      [fail(0), fail(10), fail(20), { at: 21, allow: false, retryInMs: 999 }, { at: 500, allow: false }],
    ],
    [
      'open: one probe per second, the others refused',
      [
        fail(0),
        fail(0),
        fail(0),
        { at: 1_000, allow: true },
        { at: 1_001, allow: false },
        { at: 1_500, allow: false },
        { at: 2_000, allow: true },
        { at: 2_000, allow: false },
      ],
    ],
    [
      'a failed probe keeps it open, next probe a second later (not doubling: recovery within 2 s)',
      [
        fail(0),
        fail(0),
        fail(0),
        { at: 1_000, allow: true },
        fail(1_050),
        { at: 1_900, allow: false },
        { at: 2_050, allow: true },
        fail(2_060),
        { at: 3_060, allow: true },
      ],
    ],
    [
      'a successful probe closes it: everyone goes through again',
      [
        fail(0),
        fail(0),
        fail(0),
        { at: 1_000, allow: true },
        { at: 1_010, succeed: true },
        { at: 1_011, allow: true },
        { at: 1_012, allow: true },
        fail(1_020),
        { at: 1_021, allow: true },
      ],
    ],
    [
      "the provider's Retry-After holds the probes back that long",
      [
        fail(0),
        fail(0),
        fail(0, 10_000),
        { at: 1_000, allow: false, retryInMs: 9_000 },
        { at: 9_999, allow: false },
        { at: 10_000, allow: true },
        { at: 10_001, allow: false },
      ],
    ],
    [
      'a Retry-After beyond the cap is capped (5 min)',
      [fail(0), fail(0), fail(0, 3_600_000), { at: 299_999, allow: false }, { at: 300_000, allow: true }],
    ],
  ];

  it.each(table)('%s', (_, steps) => {
    run(steps);
  });

  it('keeps providers apart', () => {
    let now = 0;
    const breakers = new CircuitBreakers({ now: () => now }, { threshold: 1 });
    breakers.failure('down');
    now = 10;
    expect(breakers.allow('down')).toBe(false);
    expect(breakers.allow('up')).toBe(true);
  });

  it('honours a configured probe interval', () => {
    run([fail(0), fail(0), fail(0), { at: 249, allow: false }, { at: 250, allow: true }], { openMs: 250 });
  });
});
