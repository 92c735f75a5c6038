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
