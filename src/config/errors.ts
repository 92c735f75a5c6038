import type { z } from 'zod';
import { valueAt } from '../support/value-at.js';

/** One problem in a configuration: where (`providers[1].clientSecret`) and what, never the value. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** Pseudo-paths for problems that are not about one field. */
export const rootPath = '(root)';
export const yamlPath = '(yaml)';
export const filePath = '(file)';

/**
 * The configuration could not be loaded. Lists every problem found, each as `path: message`;
 * messages name fields, limits and allowed values but never echo what was given, since a
 * misplaced secret would otherwise end up in a terminal or a log.
 */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(`invalid configuration (${count}):\n${formatIssues(issues)}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }

  /** One `path: message` line per problem, as `check-config` prints them. */
  format(): string {
    return formatIssues(this.issues);
  }
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n');
}

const plainKey = /^[A-Za-z_$][\w$-]*$/;

/** Formats a path as `providers[1].clientSecret`; odd keys as `["x.y"]`; the empty path as `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && plainKey.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? rootPath : out;
}

/** Whether `path` is `prefix` itself or a field inside it (both formatted). */
export function isWithinPath(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

type ZodIssue = z.core.$ZodIssue;

/**
 * Turns zod issues into config issues with our own wording. `input` is the document that was
 * validated; it is consulted only to tell a missing field from a wrong one and to name the kind
 * of value that was found (`a number`), never to quote it.
 */
export function issuesFromZod(issues: readonly ZodIssue[], input: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (path: readonly PropertyKey[], message: string): void => {
    const formatted = formatPath(path);
    const key = `${formatted}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ path: formatted, message });
  };
  const visit = (issue: ZodIssue, prefix: readonly PropertyKey[]): void => {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) add([...path, key], `unknown field ${JSON.stringify(key)}`);
        return;
      case 'invalid_union': {
        if (issue.discriminator !== undefined) {
          const allowed = listValues('options' in issue ? (issue.options ?? []) : []);
          add(
            path,
            valueAt(input, path) === undefined ? `required (one of ${allowed})` : `must be one of ${allowed}`,
          );
          return;
        }
        // A branch that failed only because the value has another type says nothing useful;
        // when exactly one branch fits the type, its own issues are the real problems.
        const fitting = issue.errors.filter(
          (branch) => !branch.some((inner) => inner.code === 'invalid_type' && inner.path.length === 0),
        );
        if (fitting.length === 1) {
          for (const inner of fitting[0] ?? []) visit(inner, path);
        } else if (fitting.length === 0) {
          const kinds = issue.errors.flatMap((branch) =>
            branch.flatMap((inner) => (inner.code === 'invalid_type' ? [expectedKind(inner.expected)] : [])),
          );
          add(path, `must be ${[...new Set(kinds)].join(' or ')}, not ${kindOf(valueAt(input, path))}`);
        } else {
          add(path, 'does not match any of the allowed forms');
        }
        return;
      }
      default:
        add(path, messageFor(issue, valueAt(input, path)));
    }
  };
  for (const issue of issues) visit(issue, []);
  return out;
}

function messageFor(issue: ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined || issue.expected === 'nonoptional') return 'required';
      if (issue.expected === 'never') return 'not allowed here';
      return `must be ${expectedKind(issue.expected)}, not ${kindOf(value)}`;
    case 'too_small':
      return tooSmall(issue.origin, Number(issue.minimum), issue.inclusive !== false);
    case 'too_big':
      return tooBig(issue.origin, Number(issue.maximum), issue.inclusive !== false);
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${listValues(issue.values)}`
        : `must be one of ${listValues(issue.values)}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'is not in the expected format' : `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_key':
      return 'has an invalid key';
    case 'invalid_element':
      return 'has an invalid element';
    case 'custom':
      // Every custom issue comes from this module's schema, worded without the value.
      return issue.message;
    default:
      return 'is invalid';
  }
}

function tooSmall(origin: string, minimum: number, inclusive: boolean): string {
  if (origin === 'string')
    return minimum <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`;
  if (origin === 'array' || origin === 'set')
    return minimum <= 1 ? 'must not be empty' : `must have at least ${minimum} items`;
  return inclusive ? `must be at least ${minimum}` : `must be greater than ${minimum}`;
}

function tooBig(origin: string, maximum: number, inclusive: boolean): string {
  if (origin === 'string') return `must be at most ${maximum} characters`;
  if (origin === 'array' || origin === 'set') return `must have at most ${maximum} items`;
  return inclusive ? `must be at most ${maximum}` : `must be less than ${maximum}`;
}

const expectedKinds: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  null: 'empty',
};

function expectedKind(expected: string): string {
  return expectedKinds[expected] ?? `of type ${expected}`;
}

/** Names the kind of a value (`a number`), never the value itself. */
function kindOf(value: unknown): string {
  if (value === null) return 'empty';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      if (Number.isNaN(value)) return 'NaN';
      if (!Number.isFinite(value)) return 'infinite';
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** Allowed values, from the schema (never from the input). */
function listValues(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}
