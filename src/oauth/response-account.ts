import type { AccountIdentity } from './token-set.js';

/** Where in a token response the connected account is, as dotted paths (`owner.user.id`). */
export interface AccountPaths {
  id: string;
  name?: string | undefined;
  email?: string | undefined;
}

/**
 * The account a token response names, for providers that put it there instead of an ID token or
 * a userinfo endpoint (Notion's `owner.user`, Dropbox's `account_id`, Slack's user id). Strings
 * and safe integers only; anything else leaves that field out.
 */
export function accountFromResponse(response: Record<string, unknown>, paths: AccountPaths): AccountIdentity {
  const id = scalar(at(response, paths.id));
  const name = paths.name === undefined ? undefined : scalar(at(response, paths.name));
  const email = paths.email === undefined ? undefined : scalar(at(response, paths.email));
  return {
    ...(id === undefined ? {} : { id }),
    ...(name === undefined ? {} : { name }),
    ...(email?.includes('@') ? { email } : {}),
  };
}

function at(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = Object.hasOwn(current, key) ? (current as Record<string, unknown>)[key] : undefined;
  }
  return current;
}

function scalar(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  return typeof value === 'string' && value.length > 0 ? value.slice(0, 320) : undefined;
}
