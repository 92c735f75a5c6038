import type { z } from 'zod';
import { Problem } from './problem.js';

/** Parses request input with a zod schema; failures become a 400 problem listing each field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'invalid_type' && i.input === undefined ? 'required' : publicMessage(i),
  }));
  throw new Problem(
    400,
    'validation_failed',
    'Bad Request',
    errors.map((e) => `${e.path}: ${e.message}`).join('; '),
    { errors },
  );
}

/** zod's own messages for these codes never contain the input value. */
function publicMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}`;
    case 'unrecognized_keys':
      return `unknown field(s): ${issue.keys.join(', ')}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    default:
      return 'is invalid';
  }
}
