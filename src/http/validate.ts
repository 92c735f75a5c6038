import { z } from 'zod';
import { valueAt } from '../support/value-at.js';
import { Problem } from './problem.js';

/** An integration id in a request: the config's slug rule, with a message that says it. */
export const integrationIdSchema = () =>
  z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9_-]{0,63}$/,
      'must be an integration id (1-64 lowercase letters, digits, _ and -)',
    );

/**
 * Parses request input with a zod schema; failures become a 400 problem listing each field and
 * saying what is wrong with it (missing, wrong type, given more than once, wrong format), never
 * quoting the value.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message: messageFor(issue, valueAt(input, issue.path), where),
  }));
  throw new Problem(
    400,
    'validation_failed',
    'Bad Request',
    errors.map((e) => `${e.path}: ${e.message}`).join('; '),
    { errors },
  );
}

/** Our own wording per zod issue; the input is consulted for its kind only, never quoted. */
function messageFor(issue: z.core.$ZodIssue, value: unknown, where: string): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'required';
      // A query or form parameter repeated (`?a=1&a=2`) arrives as a list.
      if (Array.isArray(value) && issue.expected !== 'array' && (where === 'query' || where === 'form'))
        return 'given more than once';
      // Query, form, path and header values are all text: "not a string" would say nothing.
      if (typeof value === 'string' && where !== 'body') return `must be ${expectedKind(issue.expected)}`;
      return `must be ${expectedKind(issue.expected)}, not ${kindOf(value)}`;
    case 'too_small':
      return tooSmall(issue.origin, Number(issue.minimum));
    case 'too_big':
      return tooBig(issue.origin, Number(issue.maximum));
    case 'unrecognized_keys':
      return `unknown field(s): ${issue.keys.map(showKey).join(', ')}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      if (issue.format === 'regex') return ownMessage(issue.message) ?? 'is not in the expected format';
      return `must be a valid ${formatNames[issue.format] ?? issue.format}`;
    case 'custom':
      return ownMessage(issue.message) ?? 'is invalid';
    default:
      return 'is invalid';
  }
}

/** A message written in a schema (ours, without values); zod's defaults start with "Invalid". */
function ownMessage(message: string): string | undefined {
  return message === '' || message.startsWith('Invalid') ? undefined : message;
}

const formatNames: Record<string, string> = { uuid: 'UUID', url: 'URL', email: 'e-mail address' };

function tooSmall(origin: string, minimum: number): string {
  if (origin === 'string')
    return minimum <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`;
  if (origin === 'array') return `must have at least ${minimum} items`;
  return `must be at least ${minimum}`;
}

function tooBig(origin: string, maximum: number): string {
  if (origin === 'string') return `must be at most ${maximum} characters`;
  if (origin === 'array') return `must have at most ${maximum} items`;
  return `must be at most ${maximum}`;
}

const expectedKinds: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
  null: 'null',
};

function expectedKind(expected: string): string {
  return expectedKinds[expected] ?? `of type ${expected}`;
}

/** The kind of a value (`a number`), never the value itself. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isNaN(value) ? 'NaN' : 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** An unknown field's name, shown only when it is short and plain (it is the caller's text). */
function showKey(key: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(key) ? key : '(a field name not shown)';
}
