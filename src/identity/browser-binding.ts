import { timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../support/hash.js';

/**
 * The value that ties an OAuth flow to the browser that started it: a SHA-256 of the session
 * cookie, domain-separated from the session row's own key, so only that browser can present it
 * and a database read cannot be turned into it. @see RFC 9700 §4.7 (CSRF on the redirect URI)
 */
export function browserBindingOf(sessionCookie: string): string {
  return sha256Hex(`nunq-flow-binding\u0000${sessionCookie}`);
}

/** True when the flow was bound to a browser and this request comes from it (constant time). */
export function isSameBrowser(bound: string | null, current: string | undefined): boolean {
  if (bound === null || current === undefined) return false;
  const a = Buffer.from(bound);
  const b = Buffer.from(current);
  return a.length === b.length && timingSafeEqual(a, b);
}
