import type { Kysely } from 'kysely';
import type { AuditRow, Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';

/** What the audit log records. Stable strings: dashboards and tests match on them. */
export type AuditAction =
  | 'session.started'
  | 'connection.created'
  | 'connection.reconnected'
  | 'connection.needs_reauth'
  | 'connection.deleted'
  | 'connection.revocation_failed'
  | 'authorization.failed'
  | 'authorization.parked'
  | 'authorization.cancelled'
  | 'secret.decrypt_failed'
  | 'keys.rotated'
  | 'provider.config_error'
  | 'admin.provider_saved'
  | 'admin.integration_saved'
  | 'admin.connection_refreshed'
  | 'admin.webhook_saved'
  | 'admin.webhook_updated'
  | 'admin.webhook_deleted'
  | 'admin.webhook_redelivered'
  | 'admin.provider_created'
  | 'admin.provider_updated'
  | 'admin.provider_deleted'
  | 'admin.integration_created'
  | 'admin.integration_updated'
  | 'admin.integration_deleted'
  | 'config.synced';

export interface AuditEntry {
  actor: string;
  action: AuditAction;
  targetType?: string;
  targetId?: string;
  /**
   * The user the entry concerns when it is not the actor (a connection's owner, when the system
   * or an administrator acted on it). Default: the actor, unless the actor is not a user.
   */
  userId?: string;
  /** The integration it concerns. Default: `data.integration`, or the target when it is an integration. */
  integrationId?: string;
  /** Details for humans; callers must never put a secret here. */
  data?: Record<string, unknown>;
}

/** Actors that are not users: their entries concern no user unless `userId` says so. */
const nonUserActors = new Set(['system', 'cli', 'config']);

/** What the admin console and `/api/v1/admin/audit` filter the log by. */
export interface AuditFilter {
  /** Entries concerning this user, or acted by them. */
  user?: string;
  integration?: string;
  action?: string;
  /** From this time on (ms since the epoch), inclusive. */
  since?: number;
  /** Before this time (ms), exclusive. */
  until?: number;
  /** An id cursor for paging: entries older than this one. */
  before?: number;
  targetId?: string;
}

/** The append-only audit log (the database refuses updates and deletes of its rows). */
export class AuditLog {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async record(entry: AuditEntry, db: Kysely<Database> = this.#db): Promise<void> {
    const dataIntegration = entry.data?.integration;
    await db
      .insertInto('audit_log')
      .values({
        at: this.#clock.now(),
        actor: entry.actor,
        action: entry.action,
        target_type: entry.targetType ?? null,
        target_id: entry.targetId ?? null,
        data: JSON.stringify(entry.data ?? {}),
        user_id: entry.userId ?? (nonUserActors.has(entry.actor) ? null : entry.actor),
        integration_id:
          entry.integrationId ??
          (typeof dataIntegration === 'string'
            ? dataIntegration
            : entry.targetType === 'integration'
              ? (entry.targetId ?? null)
              : null),
      })
      .execute();
  }

  /** Newest first, at most `limit` (default 100, at most 500) entries matching `filter`. */
  async list(options: AuditFilter & { limit?: number } = {}): Promise<AuditRow[]> {
    return this.#query(options, Math.min(options.limit ?? 100, 500)).execute();
  }

  /**
   * Every entry matching `filter`, newest first, read in pages of `pageSize` (an export of any
   * size never holds more than one page).
   */
  async *export(filter: AuditFilter, pageSize = 1_000): AsyncGenerator<AuditRow> {
    let before = filter.before;
    for (;;) {
      const page = await this.#query(
        { ...filter, ...(before === undefined ? {} : { before }) },
        pageSize,
      ).execute();
      yield* page;
      if (page.length < pageSize) return;
      before = page[page.length - 1]!.id;
    }
  }

  #query(f: AuditFilter, limit: number) {
    let q = this.#db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit);
    if (f.before !== undefined) q = q.where('id', '<', f.before);
    if (f.targetId !== undefined) q = q.where('target_id', '=', f.targetId);
    if (f.user !== undefined) {
      const user = f.user;
      q = q.where((eb) => eb.or([eb('user_id', '=', user), eb('actor', '=', user)]));
    }
    if (f.integration !== undefined) q = q.where('integration_id', '=', f.integration);
    if (f.action !== undefined) q = q.where('action', '=', f.action);
    if (f.since !== undefined) q = q.where('at', '>=', f.since);
    if (f.until !== undefined) q = q.where('at', '<', f.until);
    return q;
  }
}

/** An audit row as the API and the export show it: ISO time, details parsed. */
export function auditView(row: AuditRow) {
  return {
    id: row.id,
    at: new Date(row.at).toISOString(),
    actor: row.actor,
    action: row.action,
    targetType: row.target_type,
    targetId: row.target_id,
    user: row.user_id,
    integration: row.integration_id,
    data: JSON.parse(row.data) as Record<string, unknown>,
  };
}
