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
  /** Details for humans; callers must never put a secret here. */
  data?: Record<string, unknown>;
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
    await db
      .insertInto('audit_log')
      .values({
        at: this.#clock.now(),
        actor: entry.actor,
        action: entry.action,
        target_type: entry.targetType ?? null,
        target_id: entry.targetId ?? null,
        data: JSON.stringify(entry.data ?? {}),
      })
      .execute();
  }

  /** Newest first; `before` is an id cursor for paging. */
  async list(options: { limit?: number; before?: number; targetId?: string } = {}): Promise<AuditRow[]> {
    let q = this.#db
      .selectFrom('audit_log')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(Math.min(options.limit ?? 100, 500));
    if (options.before !== undefined) q = q.where('id', '<', options.before);
    if (options.targetId !== undefined) q = q.where('target_id', '=', options.targetId);
    return q.execute();
  }
}
