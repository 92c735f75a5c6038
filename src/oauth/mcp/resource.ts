import { checkResourceAllowed } from '@modelcontextprotocol/sdk/shared/auth-utils.js';

/**
 * The canonical URI of an MCP server, the form RFC 8707 `resource` values are compared in:
 * lowercase scheme and host (the URL parser does both), no default port, no fragment, and no
 * trailing slash (the MCP spec's preferred form; `https://host/` becomes `https://host`).
 * @see RFC 8707 §2, MCP authorization "Canonical Server URI"
 */
export function canonicalServerUri(url: string | URL): string {
  const u = new URL(String(url));
  u.hash = '';
  if (u.pathname.endsWith('/')) u.pathname = u.pathname.replace(/\/+$/, '');
  const href = u.href;
  // The URL serializer keeps the root path's slash: drop it (`https://host/?q` → `https://host?q`).
  return u.pathname === '/' ? href.replace(`${u.origin}/`, u.origin) : href;
}

/**
 * Whether protected-resource metadata naming `resource` may speak for the server at `serverUrl`:
 * the same canonical URI, or a same-origin path prefix of it on a segment boundary (the contract's
 * rule; the MCP SDK's `checkResourceAllowed`). A `resource` with a query must match exactly.
 */
export function resourceMatches(resource: string, serverUrl: string | URL): boolean {
  if (!URL.canParse(resource)) return false;
  const configured = canonicalServerUri(resource);
  const requested = canonicalServerUri(serverUrl);
  if (configured === requested) return true;
  if (new URL(configured).search !== '') return false;
  return checkResourceAllowed({ requestedResource: requested, configuredResource: configured });
}
