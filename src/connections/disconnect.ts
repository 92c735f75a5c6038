import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import { ProviderError } from '../oauth/errors.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { ConnectionRow, Database } from '../store/types.js';
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
}

export type RevocationOutcome = 'revoked' | 'unsupported' | 'failed' | 'retrying' | 'nothing_to_revoke';

/**
 * Disconnects: revokes at the provider where it has an RFC 7009 endpoint (the refresh token,
 * which ends the grant; the access token only when there is no refresh token), then deletes the
 * connection and its sealed tokens. A failed revocation is audited, retried in the background
 * when transient, and never blocks the user. @see RFC 7009 §2
 */
export async function disconnect(
  d: DisconnectDeps,
  row: ConnectionRow,
  actor: string,
): Promise<RevocationOutcome> {
  const revocation = await revoke(d, row);
  await d.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('connections').where('id', '=', row.id).execute();
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
        data: { integration: row.integration_id, revocation },
      },
      trx,
    );
    await d.webhooks.enqueue(db, 'connection.deleted', {
      connectionId: row.id,
      userId: row.user_id,
      integration: row.integration_id,
    });
  });
  d.cache?.invalidate(row.id);
  return revocation;
}

async function revoke(d: DisconnectDeps, row: ConnectionRow): Promise<RevocationOutcome> {
  const integration = await d.catalog.getIntegration(row.integration_id);
  if (integration?.providerId == null) return 'unsupported';
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
    const client = await d.clients.forProvider(integration.providerId);
    if (!client.supportsRevocation) return 'unsupported';
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
      data: { integration: row.integration_id, reason },
    });
    if (reason === 'transient' || reason === 'error') {
      // The provider hiccuped: retry in the background; the user is never blocked.
      await d.revocations.enqueue({
        providerId: integration.providerId,
        connectionId: row.id,
        token: (refreshToken ?? accessToken)!,
        hint: refreshToken !== undefined ? 'refresh_token' : 'access_token',
      });
      return 'retrying';
    }
    return 'failed';
  }
}
