/**
 * The value at a zod issue's path in the input, for wording a message by its kind (never to show
 * the value). Only own properties are followed, so `__proto__` and friends read as absent.
 */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
