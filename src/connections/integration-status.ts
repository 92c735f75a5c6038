import type { CatalogRepository, IntegrationRecord } from '../store/repos/catalog.js';
import type { ConnectionRepository } from '../store/repos/connections.js';
import type { ConnectionRow, IntegrationKind } from '../store/types.js';
import { mayAccess } from './access.js';

export type IntegrationStatus = 'not_connected' | 'active' | 'needs_reauth';

/** One integration as a user sees it: what it is and how their connection to it stands. */
export interface UserIntegration {
  id: string;
  name: string;
  kind: IntegrationKind;
  description: string | null;
  status: IntegrationStatus;
  connectionId?: string;
  account?: { id?: string; name?: string; email?: string };
}

/**
 * Joins the enabled integrations the user may see (their groups) with the user's connections
 * (two indexed queries).
 */
export async function listUserIntegrations(
  catalog: CatalogRepository,
  connections: ConnectionRepository,
  user: { userId: string; groups: readonly string[] },
): Promise<UserIntegration[]> {
  const [integrations, rows] = await Promise.all([
    catalog.listIntegrations(),
    connections.listForUser(user.userId),
  ]);
  const byIntegration = new Map(rows.map((r) => [r.integration_id, r]));
  return integrations
    .filter((i) => mayAccess(i, user.groups))
    .map((i) => toUserIntegration(i, byIntegration.get(i.id)));
}

function toUserIntegration(i: IntegrationRecord, c: ConnectionRow | undefined): UserIntegration {
  const base = { id: i.id, name: i.name, kind: i.kind, description: i.settings.description ?? null };
  if (c === undefined) return { ...base, status: 'not_connected' };
  return {
    ...base,
    status: c.status,
    connectionId: c.id,
    account: {
      ...(c.account_id === null ? {} : { id: c.account_id }),
      ...(c.account_name === null ? {} : { name: c.account_name }),
      ...(c.account_email === null ? {} : { email: c.account_email }),
    },
  };
}
