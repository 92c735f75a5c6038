import type { IntegrationRecord } from '../store/repos/catalog.js';

/**
 * Whether a user may see and use an integration: it names no groups, or the user is in one of
 * them (the JWT's `auth.groupsClaim`). Everyone else is told it does not exist (404), on every
 * route of it: the lists, Connect, the connections API, the proxy and the MCP gateway.
 */
export function mayAccess(
  integration: Pick<IntegrationRecord, 'settings'>,
  groups: readonly string[] | undefined,
): boolean {
  const required = integration.settings.groups;
  if (required === undefined || required.length === 0) return true;
  return groups?.some((g) => required.includes(g)) === true;
}
