/** Who a request acts for. `role` is `admin` when the token says so or the user is in `auth.admins`. */
export interface Identity {
  readonly userId: string;
  readonly name: string | null;
  readonly role: 'admin' | 'user';
  /** `session`: a browser cookie (state changes need the CSRF token); `bearer`: an API token. */
  readonly via: 'session' | 'bearer';
  readonly csrfToken: string | null;
  /** The user's groups (the JWT's `auth.groupsClaim`; kept with a session): who may see what. */
  readonly groups: readonly string[];
  /** Sessions only: ties a flow to this browser (`browserBindingOf` the cookie); never sent anywhere. */
  readonly browserBinding?: string;
}

/** User ids are opaque strings from the platform; bounded so they stay safe in URLs, logs and keys. */
export const userIdPattern = /^[A-Za-z0-9._@:|+-]{1,200}$/;

export function isAdmin(userId: string, roleClaim: unknown, admins: readonly string[]): boolean {
  return roleClaim === 'admin' || admins.includes(userId);
}

/**
 * The groups a JWT claim carries: a list of strings, or one string; anything else is none. Each
 * is bounded so a huge claim cannot bloat a session row.
 */
export function groupsFromClaim(claim: unknown): string[] {
  const list = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim : [];
  return list
    .filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 200)
    .slice(0, 100);
}
