import { randomInt } from 'node:crypto';

/** Refresh this long before expiry at most (default margin). */
export const defaultRefreshMarginMs = 5 * 60 * 1000;

/**
 * When an access token should be refreshed: `margin` before it expires, but never earlier than
 * three quarters into its lifetime, so short-lived tokens are not refreshed right after issue.
 * Null when the provider gave no expiry (valid until a 401 says otherwise).
 */
export function refreshDueAt(
  expiresAt: number | null,
  issuedAt: number,
  marginMs: number = defaultRefreshMarginMs,
): number | null {
  if (expiresAt === null) return null;
  const lifetime = Math.max(0, expiresAt - issuedAt);
  return expiresAt - Math.min(marginMs, Math.floor(lifetime / 4));
}

/**
 * When the scheduler should next refresh a connection: shortly before its refresh is due, with
 * jitter (up to a tenth of the margin window) so that tokens issued together do not all refresh
 * in the same second; and, for providers whose refresh tokens expire when idle (Entra: 90 days),
 * no later than `idleMs` after now.
 */
export function nextRefreshAt(
  expiresAt: number | null,
  now: number,
  options: { marginMs?: number; idleMs?: number | null } = {},
): number | null {
  const due = refreshDueAt(expiresAt, now, options.marginMs);
  const jittered =
    due === null ? null : due - randomInt(Math.max(1, Math.floor((expiresAt! - due) / 10)) + 1);
  const idle = options.idleMs == null ? null : now + options.idleMs;
  if (jittered === null) return idle;
  return idle === null ? jittered : Math.min(jittered, idle);
}

/**
 * How often an idle grant must be refreshed to stay alive: the provider's
 * `idleRefreshIntervalSeconds`, else weekly for Entra (its refresh tokens expire after 90 days
 * of inactivity), else never.
 */
export function idleRefreshMs(
  provider: { type: string; settings: Record<string, unknown> } | undefined,
): number | null {
  const seconds = provider?.settings.idleRefreshIntervalSeconds;
  if (typeof seconds === 'number') return seconds * 1000;
  return provider?.type === 'entra' ? 7 * 24 * 60 * 60 * 1000 : null;
}

/** The pause after a throttling answer that named no `Retry-After` (Entra's AADSTS50196 names none). */
export const defaultThrottlePauseMs = 30_000;
/** The longest pause a provider's `Retry-After` may impose on a connection (a broken header must not park it for days). */
export const maxProviderPauseMs = 15 * 60 * 1000;

/**
 * Until when no token request may be sent for a connection after a failed refresh: the provider's
 * `Retry-After` when it gave one, a default pause when it throttled us without one, else null
 * (no pause: transient failures without either are paced by the circuit breaker instead).
 * @see RFC 9110 §10.2.3 (Retry-After), RFC 6585 §4 (429)
 */
export function refreshNotBefore(
  failure: { retryAfterMs: number | undefined; throttled: boolean },
  now: number,
): number | null {
  if (failure.retryAfterMs !== undefined) return now + Math.min(maxProviderPauseMs, failure.retryAfterMs);
  return failure.throttled ? now + defaultThrottlePauseMs : null;
}
