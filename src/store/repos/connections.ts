import type { Kysely } from 'kysely';
import type { ConnectionRow, ConnectionStatus, Database } from '../types.js';

/** The public view of a connection: everything but its tokens. */
export interface ConnectionView {
  id: string;
  integration: string;
  status: ConnectionStatus;
  statusReason: string | null;
  account: { id?: string; name?: string; email?: string };
  scopes: string[];
  createdAt: string;
  updatedAt: string;
  lastRefreshedAt: string | null;
  accessTokenExpiresAt: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Maps a row to its public view; the sealed token columns are never read here. */
export function toConnectionView(row: ConnectionRow): ConnectionView {
  return {
    id: row.id,
    integration: row.integration_id,
    status: row.status,
    statusReason: row.status_reason,
    account: {
      ...(row.account_id === null ? {} : { id: row.account_id }),
      ...(row.account_name === null ? {} : { name: row.account_name }),
      ...(row.account_email === null ? {} : { email: row.account_email }),
    },
    scopes: JSON.parse(row.scopes),
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    lastRefreshedAt: iso(row.last_refreshed_at),
    accessTokenExpiresAt: iso(row.access_token_expires_at),
  };
}

/** Connection rows. Every read is scoped to its owner unless the method says otherwise. */
export class ConnectionRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async listForUser(userId: string): Promise<ConnectionRow[]> {
    return this.#db
      .selectFrom('connections')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute();
  }

  /** The user's connection by id; another user's id is indistinguishable from a missing one. */
  async findForUser(userId: string, id: string): Promise<ConnectionRow | undefined> {
    return this.#db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  /** Any user's connection by id: for callers that check the owner themselves (the row cache). */
  async findById(id: string): Promise<ConnectionRow | undefined> {
    return this.#db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async findByUserAndIntegration(userId: string, integrationId: string): Promise<ConnectionRow | undefined> {
    return this.#db
      .selectFrom('connections')
      .selectAll()
      .where('user_id', '=', userId)
      .where('integration_id', '=', integrationId)
      .executeTakeFirst();
  }

  /** Admin overview: counts by integration and status. */
  async healthOverview(): Promise<
    Array<{ integration_id: string; status: ConnectionStatus; count: number }>
  > {
    const rows = await this.#db
      .selectFrom('connections')
      .select(['integration_id', 'status', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy(['integration_id', 'status'])
      .execute();
    return rows.map((r) => ({ ...r, count: Number(r.count) }));
  }
}
