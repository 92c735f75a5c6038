import { Problem } from './problem.js';

/**
 * Accepts only a same-origin path for `return_to` (no scheme, no host, no `//` or `/\` tricks,
 * no control characters) and returns it normalised. @see RFC 9700 §4.11 (open redirectors)
 */
export function parseReturnTo(value: unknown, publicUrl: string, fallback = '/'): string {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string' || value.length > 2000) throw invalidReturnTo();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (
    !value.startsWith('/') ||
    value.startsWith('//') ||
    value.startsWith('/\\') ||
    /[\u0000-\u001f\\]/.test(value)
  ) {
    throw invalidReturnTo();
  }
  const base = new URL(publicUrl);
  const resolved = new URL(value, base);
  if (resolved.origin !== base.origin) throw invalidReturnTo();
  return `${resolved.pathname}${resolved.search}${resolved.hash}`;
}

const invalidReturnTo = (): Problem =>
  new Problem(
    400,
    'return_to_invalid',
    'Bad Request',
    'return_to must be a path on this site, such as /integrations.',
  );
