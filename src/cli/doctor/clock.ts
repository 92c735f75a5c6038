import { type CheckResult, fail, ok, warn } from './report.js';

/** A provider's `Date` header and when, by the local clock, the request went out and the answer came. */
export interface ClockSample {
  source: string;
  date: string;
  sentAt: number;
  receivedAt: number;
}

/** Above these, the local clock is too far off the providers': tokens look expired or not yet valid. */
export const clockWarnMs = 30_000;
export const clockFailMs = 5 * 60_000;

/**
 * How far the local clock is off a provider's, at least: the `Date` header (RFC 9110 §6.6.1) has
 * whole seconds and was written somewhere between sending and receiving, so the part of the
 * difference that this uncertainty can explain is not counted.
 */
export function skewOf(sample: ClockSample): { skewMs: number; aheadMs: number } | undefined {
  const remote = Date.parse(sample.date);
  if (Number.isNaN(remote)) return undefined;
  const local = (sample.sentAt + sample.receivedAt) / 2;
  const aheadMs = remote + 500 - local; // positive: the provider's clock is ahead of ours
  const uncertainty = 500 + (sample.receivedAt - sample.sentAt) / 2;
  return { skewMs: Math.max(0, Math.abs(aheadMs) - uncertainty), aheadMs };
}

/** The clock check over every sample: the worst skew decides (warn above 30 s, fail above 5 min). */
export function checkClock(samples: readonly ClockSample[], providerCount: number): CheckResult {
  let worst: { sample: ClockSample; skewMs: number; aheadMs: number } | undefined;
  for (const sample of samples) {
    const skew = skewOf(sample);
    if (skew !== undefined && (worst === undefined || skew.skewMs > worst.skewMs))
      worst = { sample, ...skew };
  }
  if (worst === undefined) {
    return providerCount === 0
      ? ok('clock', 'no providers or MCP servers configured: no clock to compare with')
      : warn('clock', 'not checked: no provider answered with a usable Date header');
  }
  const seconds = Math.round(Math.abs(worst.aheadMs) / 1000);
  const direction = worst.aheadMs > 0 ? 'behind' : 'ahead of';
  const what = `the local clock is about ${seconds} s ${direction} the clock of ${worst.sample.source}`;
  const fix = 'run NTP (chrony, systemd-timesyncd) on this host';
  if (worst.skewMs > clockFailMs)
    return fail('clock', `${what}: tokens will look expired or not yet valid; ${fix}`);
  if (worst.skewMs > clockWarnMs)
    return warn('clock', `${what}: above 30 s, token expiry and ID-token checks drift; ${fix}`);
  return ok(
    'clock',
    `within 30 s of ${samples.length === 1 ? "the provider's clock" : `the clocks of ${samples.length} provider answers`}`,
  );
}
