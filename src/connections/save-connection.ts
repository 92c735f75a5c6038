import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import type { ConnectionCache } from './connection-cache.js';
import { parkTokens } from './parked-tokens.js';
import { idleRefreshMs, nextRefreshAt } from './refresh-policy.js';

/** A pending confirmation lives as long as a pending authorization: 10 minutes. */
const confirmationTtlMs = 10 * 60 * 1000;

export interface SaveConnectionDeps {
  store: Store;
  catalog: CatalogRepository;
  sealer: Sealer;
  audit: AuditLog;
  webhooks: Webhooks;
  notifications: Notifications;
  clock: Clock;
  /** The hot path's row cache, evicted when a Reconnect replaces a connection's tokens. */
  cache?: ConnectionCache | undefined;
}

export type SavedConnection =
  | { outcome: 'connected' | 'reconnected'; connectionId: string }
  | { outcome: 'confirm'; confirmationId: string; connectionId: string };

/**
 * Creates the connection or replaces the tokens of the existing one (the same id on Reconnect,
 * fenced by its version), with notifications, audit and webhook, in one transaction. Unless
 * `confirmed`, a Reconnect that signed in as another account parks the tokens and asks instead.
 */
export async function saveConnection(
  d: SaveConnectionDeps,
  userId: string,
  integrationId: string,
  reconnectId: string | null,
  tokens: TokenSet,
  returnTo: string,
  confirmed: boolean,
  attempt = 1,
): Promise<SavedConnection> {
  const now = d.clock.now();
  // Read before the transaction: on SQLite a query outside `trx` while it is open would deadlock.
  const idleMs = await idleRefreshMsOf(d.catalog, integrationId);
  const saving = d.store.db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('connections')
      .select(['id', 'version', 'account_id'])
      .where('user_id', '=', userId)
      .where(reconnectId === null ? 'integration_id' : 'id', '=', reconnectId ?? integrationId)
      .executeTakeFirst();
    const id = existing?.id ?? randomUUID();
    if (!confirmed && existing?.account_id != null && tokens.account.id !== existing.account_id) {
      // Signed in as someone else, or as someone the provider did not name (no ID token, a
      // failed userinfo): keep the new tokens aside (sealed) and ask before replacing.
      const confirmationId = await parkTokens(trx as unknown as Kysely<Database>, d.sealer, {
        kind: 'account',
        userId,
        connectionId: id,
        integrationId,
        tokens,
        returnTo,
        browserBinding: null,
        now,
        expiresAt: now + confirmationTtlMs,
      });
      return { outcome: 'confirm' as const, confirmationId, connectionId: id };
    }
    const values = {
      status: 'active' as const,
      status_reason: null,
      account_id: tokens.account.id ?? null,
      account_name: tokens.account.name ?? null,
      account_email: tokens.account.email ?? null,
      scopes: JSON.stringify(tokens.scopes ?? []),
      issuer: tokens.issuer ?? null,
      api_base_url: tokens.apiBaseUrl ?? null,
      ...sealTokens(d.sealer, id, tokens),
      token_type: tokens.tokenType,
      access_token_expires_at: tokens.expiresAt,
      last_refreshed_at: now,
      next_refresh_at: nextRefreshAt(tokens.expiresAt, now, { idleMs }),
      refresh_failures: 0,
      lease_owner: null,
      lease_until: null,
      updated_at: now,
    };
    if (existing === undefined) {
      await trx
        .insertInto('connections')
        .values({
          id,
          user_id: userId,
          integration_id: integrationId,
          ...values,
          version: 0,
          created_at: now,
        })
        .execute();
    } else {
      const written = await trx
        .updateTable('connections')
        .set({ ...values, version: existing.version + 1 })
        .where('id', '=', id)
        .where('version', '=', existing.version)
        .executeTakeFirst();
      if (Number(written.numUpdatedRows) !== 1) throw new StaleConnectionError();
    }
    const outcome: 'connected' | 'reconnected' = existing === undefined ? 'connected' : 'reconnected';
    const db = trx as unknown as Kysely<Database>;
    await d.notifications.resolveForConnection(db, id);
    await d.notifications.publish(db, userId, 'connection.status', {
      connectionId: id,
      integration: integrationId,
      status: 'active',
    });
    const event = outcome === 'connected' ? 'connection.created' : 'connection.reconnected';
    await d.audit.record(
      {
        actor: userId,
        action: event,
        targetType: 'connection',
        targetId: id,
        data: { integration: integrationId, account: tokens.account.id ?? null },
      },
      trx,
    );
    await d.webhooks.enqueue(db, event, {
      connectionId: id,
      userId,
      integration: integrationId,
    });
    return { outcome, connectionId: id };
  });
  let saved: Awaited<typeof saving>;
  try {
    saved = await saving;
  } catch (error) {
    // A refresh committed between our read and our fenced write (PostgreSQL, read committed):
    // nothing was written; save again over the fresh row, so the new tokens are never lost
    // and the version always moves forward.
    if (error instanceof StaleConnectionError && attempt < 5) {
      return saveConnection(d, userId, integrationId, reconnectId, tokens, returnTo, confirmed, attempt + 1);
    }
    throw error;
  }
  d.cache?.invalidate(saved.connectionId);
  return saved;
}

function sealTokens(sealer: Sealer, connectionId: string, tokens: TokenSet) {
  const seal = (value: string | undefined, field: string) =>
    value === undefined ? null : sealer.seal(value, { table: 'connections', rowId: connectionId, field });
  return {
    access_token_sealed: seal(tokens.accessToken, 'access_token_sealed'),
    refresh_token_sealed: seal(tokens.refreshToken, 'refresh_token_sealed'),
    id_token_sealed: seal(tokens.idToken, 'id_token_sealed'),
  };
}

/** The connection changed between the Reconnect's read and its fenced write (rolls the transaction back). */
class StaleConnectionError extends Error {
  readonly code = 'stale_connection';
}

/** How often an idle grant of this integration's provider is refreshed to keep it alive (null: never). */
async function idleRefreshMsOf(catalog: CatalogRepository, integrationId: string): Promise<number | null> {
  const integration = await catalog.getIntegration(integrationId);
  const provider = integration?.providerId ? await catalog.getProvider(integration.providerId) : undefined;
  return idleRefreshMs(provider);
}
