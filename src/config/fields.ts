import { z } from 'zod';

// Field types shared by the config schemas (schema.ts, rate-limits.ts).

/** Accepts an integer, or a string of digits (what `${ENV}` substitution produces). */
export const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );

/** Accepts a boolean, or the strings `true`/`false` (what `${ENV}` substitution produces). */
export const boolean = () =>
  z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
