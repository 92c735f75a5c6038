export interface AdminConsentInput {
  /** The tenant to consent for: its id or domain (not common/consumers). */
  tenant: string;
  clientId: string;
  redirectUri: string;
  /** Scopes to consent to; `https://graph.microsoft.com/.default` (all configured permissions) when empty. */
  scopes?: readonly string[];
  authority?: string;
  state?: string;
}

/**
 * The link an Entra administrator opens to consent for the whole organisation, so its users are
 * never asked: `{authority}/{tenant}/v2.0/adminconsent`. Entra sends the administrator back to
 * `redirectUri` with `admin_consent=True` (or an error).
 * @see https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
 */
export function entraAdminConsentUrl(input: AdminConsentInput): URL {
  const authority = (input.authority ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  const url = new URL(`${authority}/${encodeURIComponent(input.tenant)}/v2.0/adminconsent`);
  url.searchParams.set('client_id', input.clientId);
  url.searchParams.set('redirect_uri', input.redirectUri);
  const scopes =
    input.scopes !== undefined && input.scopes.length > 0
      ? input.scopes
      : ['https://graph.microsoft.com/.default'];
  url.searchParams.set('scope', scopes.join(' '));
  if (input.state !== undefined) url.searchParams.set('state', input.state);
  return url;
}
