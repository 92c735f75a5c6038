/** Who a request acts for. `role` is `admin` when the token says so or the user is in `auth.admins`. */
export interface Identity {
  readonly userId: string;
  readonly name: string | null;
  readonly role: 'admin' | 'user';
  /** `session`: a browser cookie (state changes need the CSRF token); `bearer`: an API token. */
  readonly via: 'session' | 'bearer';
  readonly csrfToken: string | null;
  /** Sessions only: ties a flow to this browser (`browserBindingOf` the cookie); never sent anywhere. */
  readonly browserBinding?: string;
}

/** User ids are opaque strings from the platform; bounded so they stay safe in URLs, logs and keys. */
export const userIdPattern = /^[A-Za-z0-9._@:|+-]{1,200}$/;

export function isAdmin(userId: string, roleClaim: unknown, admins: readonly string[]): boolean {
  return roleClaim === 'admin' || admins.includes(userId);
}
