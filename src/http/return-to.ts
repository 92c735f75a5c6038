import { Problem } from './problem.js';

/**
 * Accepts only a same-origin path for `return_to` (no scheme, no host, no `//` or `/\` tricks,
 * no control characters) and returns it normalised. @see RFC 9700 §4.11 (open redirectors)
 */
export function parseReturnTo(value: unknown, publicUrl: string, fallback = '/'): string {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string' || value.length > 2000) throw invalidReturnTo();
  if (
    !value.startsWith('/') ||
    value.startsWith('//') ||
    value.startsWith('/\\') ||
    hasControlOrBackslash(value)
  ) {
    throw invalidReturnTo();
  }
  const base = new URL(publicUrl);
  const resolved = new URL(value, base);
  // Check the normalised path too: `/.//evil` resolves to `//evil`, which a browser reads as a host.
  if (resolved.origin !== base.origin || resolved.pathname.startsWith('//')) throw invalidReturnTo();
  return `${resolved.pathname}${resolved.search}${resolved.hash}`;
}

const invalidReturnTo = (): Problem =>
  new Problem(
    400,
    'return_to_invalid',
    'Bad Request',
    'return_to must be a path on this site, such as /integrations.',
  );

/** True when the string holds a C0 control character, DEL or a backslash (browsers treat `\` as `/`). */
export function hasControlOrBackslash(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return true;
  }
  return false;
}
