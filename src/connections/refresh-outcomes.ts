import { randomInt } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { DecryptionError } from '../crypto/index.js';
import type { AuditLog } from '../notify/audit.js';
import { adminsAudience, type Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import type { ProviderError } from '../oauth/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/database.js';
import type { ConnectionRow, Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import type { ConnectionCache } from './connection-cache.js';

export interface OutcomeDeps {
  store: Store;
  audit: AuditLog;
  webhooks: Webhooks;
  notifications: Notifications;
  clock: Clock;
}

/** A short, stable reason for humans and webhooks, from the provider's error code (never its text). */
export function reauthReason(error: ProviderError): string {
  const aadsts = error.providerErrorDescription ? /AADSTS(\d+)/.exec(error.providerErrorDescription) : null;
  return [error.providerError ?? 'rejected', aadsts ? `AADSTS${aadsts[1]}` : undefined]
    .filter(Boolean)
    .join(':');
}

/**
 * Marks the connection `needs_reauth`, once per incident: only the transition from `active`
 * (fenced by version) writes, and only that writer notifies the owner, fires the webhook,
 * publishes the SSE event and audits, in one transaction (with `alsoOnce`, if given).
 */
export async function markNeedsReauth(
  d: OutcomeDeps,
  row: ConnectionRow,
  reason: string,
  alsoOnce?: (trx: Transaction<Database>) => Promise<void>,
): Promise<boolean> {
  const now = d.clock.now();
  return d.store.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('connections')
      .set({
        status: 'needs_reauth',
        status_reason: reason,
        next_refresh_at: null,
        version: row.version + 1,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('version', '=', row.version)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    const db = trx as unknown as Kysely<Database>;
    if (!(await d.notifications.hasOpen(db, row.user_id, 'connection.needs_reauth', row.id))) {
      await d.notifications.create(db, {
        userId: row.user_id,
        type: 'connection.needs_reauth',
        connectionId: row.id,
        data: { integration: row.integration_id, reason },
      });
    }
    await d.notifications.publish(db, row.user_id, 'connection.status', {
      connectionId: row.id,
      integration: row.integration_id,
      status: 'needs_reauth',
      reason,
    });
    await d.webhooks.enqueue(db, 'connection.needs_reauth', {
      connectionId: row.id,
      userId: row.user_id,
      integration: row.integration_id,
      reason,
    });
    await d.audit.record(
      {
        actor: 'system',
        action: 'connection.needs_reauth',
        targetType: 'connection',
        targetId: row.id,
        userId: row.user_id,
        data: { integration: row.integration_id, reason },
      },
      trx,
    );
    await alsoOnce?.(trx);
    return true;
  });
}

/** The `needs_reauth` reason of a connection whose stored tokens cannot be opened. */
export const unreadableReason = 'unreadable';

export interface UnreadableDeps extends OutcomeDeps {
  logger: Logger;
  metrics: Metrics;
  cache?: ConnectionCache | undefined;
}

/**
 * A sealed token of the connection does not open (tampered, or sealed under a key that was
 * removed before rotation finished): no retry can help, the user must Reconnect. Moves it to
 * `needs_reauth` (reason `unreadable`) through the one transition, so the owner is told once,
 * and reports the incident once: one error line, one `secret.decrypt_failed` audit row, written
 * only by the instance whose transition won. Never throws (callers fire and forget it).
 */
export async function markUnreadable(
  d: UnreadableDeps,
  row: ConnectionRow,
  field: string,
  error: DecryptionError,
): Promise<void> {
  d.cache?.invalidate(row.id);
  try {
    const marked = await markNeedsReauth(d, row, unreadableReason, (trx) =>
      d.audit.record(
        {
          actor: 'system',
          action: 'secret.decrypt_failed',
          targetType: 'connection',
          targetId: row.id,
          userId: row.user_id,
          integrationId: row.integration_id,
          data: { field, reason: error.code, keyId: error.keyId ?? null },
        },
        trx,
      ),
    );
    if (!marked) return; // reported already (by this or another instance), or the row changed
    d.metrics.decryptFailures.inc({ table: 'connections' });
    d.logger.error(
      { connection: row.id, field, reason: error.code, keyId: error.keyId },
      'sealed token does not open; the connection needs reconnecting',
    );
  } catch (failure) {
    d.logger.error({ connection: row.id, err: failure }, 'could not record an unreadable connection');
  } finally {
    d.cache?.invalidate(row.id);
  }
}

/** Exponential backoff with ±20 % jitter: 5 s doubling to 15 min, at least the provider's Retry-After. */
export function refreshBackoffMs(failures: number, retryAfterMs?: number): number {
  const base = Math.min(15 * 60_000, 5_000 * 2 ** Math.max(0, failures - 1));
  const jittered = Math.round(base * (0.8 + (0.4 * randomInt(1_000_000)) / 1_000_000));
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Records a transient failure: the status stays `active`; the next scheduled try backs off. */
export async function recordTransientFailure(
  d: OutcomeDeps,
  row: ConnectionRow,
  retryAfterMs?: number,
): Promise<void> {
  const failures = row.refresh_failures + 1;
  await d.store.db
    .updateTable('connections')
    .set({
      refresh_failures: failures,
      next_refresh_at: d.clock.now() + refreshBackoffMs(failures, retryAfterMs),
    })
    .where('id', '=', row.id)
    .where('version', '=', row.version)
    .execute();
}

/**
 * Tells the administrators once per provider that it rejects our client (an admin problem, not
 * the user's): one open notification per provider until it is resolved; the connection's status
 * is unchanged and its scheduled refresh backs off.
 */
export async function alertConfigError(
  d: OutcomeDeps,
  row: ConnectionRow,
  providerId: string,
  error: ProviderError,
): Promise<void> {
  const subject = `provider:${providerId}`;
  await d.store.db.transaction().execute(async (trx) => {
    const db = trx as unknown as Kysely<Database>;
    await trx
      .updateTable('connections')
      .set({ refresh_failures: row.refresh_failures + 1, next_refresh_at: d.clock.now() + 15 * 60_000 })
      .where('id', '=', row.id)
      .where('version', '=', row.version)
      .execute();
    if (await d.notifications.hasOpen(db, adminsAudience, 'provider.config_error', subject)) return;
    await d.notifications.create(db, {
      userId: adminsAudience,
      type: 'provider.config_error',
      connectionId: subject,
      data: { provider: providerId, error: error.providerError ?? 'rejected' },
    });
    await d.audit.record(
      {
        actor: 'system',
        action: 'provider.config_error',
        targetType: 'provider',
        targetId: providerId,
        data: { error: error.providerError ?? 'rejected' },
      },
      trx,
    );
  });
}

/** A refresh for the provider succeeded again: its open admin alert is resolved. */
export async function resolveConfigAlert(d: OutcomeDeps, providerId: string): Promise<void> {
  await d.store.db
    .updateTable('notifications')
    .set({ resolved_at: d.clock.now() })
    .where('user_id', '=', adminsAudience)
    .where('type', '=', 'provider.config_error')
    .where('connection_id', '=', `provider:${providerId}`)
    .where('resolved_at', 'is', null)
    .execute();
}
