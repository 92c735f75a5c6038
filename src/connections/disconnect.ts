import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import { ProviderError } from '../oauth/errors.js';
import { clientKeyOf, type ProviderClients } from '../oauth/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { ConnectionRow, Database } from '../store/types.js';
import { type Clock, systemClock } from '../support/clock.js';
import type { ConnectionCache } from './connection-cache.js';
import type { RevocationQueue } from './revocations.js';

export interface DisconnectDeps {
  store: Store;
  catalog: CatalogRepository;
  clients: ProviderClients;
  sealer: Sealer;
  audit: AuditLog;
  webhooks: Webhooks;
  notifications: Notifications;
  revocations: RevocationQueue;
  logger: Logger;
  /** The hot path's row cache, evicted once the row is gone. */
  cache?: ConnectionCache;
  /** The clock refresh leases are measured in (default: the system clock). */
  clock?: Clock;
}

export type RevocationOutcome = 'revoked' | 'unsupported' | 'failed' | 'retrying' | 'nothing_to_revoke';

/** How long Disconnect holds the refresh lease: longer than one revocation request takes. */
const disconnectLeaseMs = 60_000;
/** How long Disconnect waits for a refresh in flight to finish before going ahead anyway. */
const refreshWaitMs = 65_000;

/**
 * Disconnects: revokes at the provider where it has an RFC 7009 endpoint (the refresh token,
 * which ends the grant; the access token only when there is no refresh token), then deletes the
 * connection and its sealed tokens. A failed revocation is audited, retried in the background
 * when transient, and never blocks the user. The tokens revoked are the ones deleted: Disconnect
 * first takes the refresh lease (waiting for a refresh in flight), so no refresh can rotate the
 * grant between the revocation and the delete, and the delete is fenced by the version it
 * revoked (a Reconnect meanwhile is revoked too). @see RFC 7009 §2
 */
export async function disconnect(
  d: DisconnectDeps,
  row: ConnectionRow,
  actor: string,
): Promise<RevocationOutcome> {
  const owner = `disconnect:${randomUUID()}`;
  try {
    for (let attempt = 1; ; attempt++) {
      await holdRefreshLease(d, row.id, owner);
      const current = await d.store.db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', row.id)
        .executeTakeFirst();
      if (current === undefined) return 'nothing_to_revoke'; // disconnected meanwhile
      const revocation = await revoke(d, current);
      if (await deleteRevoked(d, current, actor, revocation)) return revocation;
      // A Reconnect stored new tokens after we read them: revoke those as well.
      if (attempt >= 5) throw new Error(`connection ${row.id} kept changing during Disconnect`);
    }
  } finally {
    d.cache?.invalidate(row.id);
    await d.store.db
      .updateTable('connections')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', row.id)
      .where('lease_owner', '=', owner)
      .execute();
  }
}

/**
 * Takes the connection's refresh lease for Disconnect, waiting while a refresh holds it (its
 * rotated tokens are then the ones revoked). After `refreshWaitMs` it goes ahead without: the
 * version fence of the delete still catches a write made meanwhile.
 */
async function holdRefreshLease(d: DisconnectDeps, id: string, owner: string): Promise<void> {
  const clock = d.clock ?? systemClock;
  const deadline = Date.now() + refreshWaitMs;
  for (;;) {
    const now = clock.now();
    const taken = await d.store.db
      .updateTable('connections')
      .set({ lease_owner: owner, lease_until: now + disconnectLeaseMs })
      .where('id', '=', id)
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
      )
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) === 1 || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deletes the row if it still holds the tokens just revoked (same version); audits and notifies in one transaction. */
async function deleteRevoked(
  d: DisconnectDeps,
  row: ConnectionRow,
  actor: string,
  revocation: RevocationOutcome,
): Promise<boolean> {
  return d.store.db.transaction().execute(async (trx) => {
    const deleted = await trx
      .deleteFrom('connections')
      .where('id', '=', row.id)
      .where('version', '=', row.version)
      .executeTakeFirst();
    if (Number(deleted.numDeletedRows) !== 1) return false;
    const db = trx as unknown as Kysely<Database>;
    await d.notifications.resolveForConnection(db, row.id);
    await d.notifications.publish(db, row.user_id, 'connection.status', {
      connectionId: row.id,
      integration: row.integration_id,
      status: 'deleted',
    });
    await d.audit.record(
      {
        actor,
        action: 'connection.deleted',
        targetType: 'connection',
        targetId: row.id,
        userId: row.user_id,
        data: { integration: row.integration_id, revocation },
      },
      trx,
    );
    await d.webhooks.enqueue(db, 'connection.deleted', {
      connectionId: row.id,
      userId: row.user_id,
      integration: row.integration_id,
    });
    return true;
  });
}

async function revoke(d: DisconnectDeps, row: ConnectionRow): Promise<RevocationOutcome> {
  const integration = await d.catalog.getIntegration(row.integration_id);
  const clientKey = integration === undefined ? null : clientKeyOf(integration);
  if (clientKey === null) return 'unsupported';
  const open = (value: string | null, field: string) => {
    if (value === null) return undefined;
    try {
      return d.sealer.open(value, { table: 'connections', rowId: row.id, field });
    } catch {
      return undefined;
    }
  };
  const refreshToken = open(row.refresh_token_sealed, 'refresh_token_sealed');
  const accessToken = open(row.access_token_sealed, 'access_token_sealed');
  if (refreshToken === undefined && accessToken === undefined) return 'nothing_to_revoke';
  try {
    const client = await d.clients.forKey(clientKey, { evenDisabled: true });
    if (!client.supportsRevocation) return 'unsupported';
    // Tokens go back only to the authorization server that issued them, never to a new one.
    if (row.issuer !== null && row.issuer !== client.expectedIssuer) return 'unsupported';
    // Revoking the refresh token ends the grant and, per RFC 7009 §2.1, should revoke its access
    // tokens too; the access token is revoked alone only when there is no refresh token.
    if (refreshToken !== undefined) await client.revoke(refreshToken, 'refresh_token');
    else if (accessToken !== undefined) await client.revoke(accessToken, 'access_token');
    return 'revoked';
  } catch (error) {
    const reason = error instanceof ProviderError ? error.kind : 'error';
    d.logger.warn({ connection: row.id, reason }, 'revocation failed');
    await d.audit.record({
      actor: 'system',
      action: 'connection.revocation_failed',
      targetType: 'connection',
      targetId: row.id,
      userId: row.user_id,
      data: { integration: row.integration_id, reason },
    });
    if (reason === 'transient' || reason === 'error') {
      // The provider hiccuped: retry in the background; the user is never blocked.
      await d.revocations.enqueue({
        providerId: clientKey,
        connectionId: row.id,
        token: (refreshToken ?? accessToken)!,
        hint: refreshToken !== undefined ? 'refresh_token' : 'access_token',
      });
      return 'retrying';
    }
    return 'failed';
  }
}
