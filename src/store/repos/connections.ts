import { type Kysely, sql } from 'kysely';
import type { ConnectionRow, ConnectionStatus, Database, Millis } from '../types.js';

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

/** What the admin console reads of a connection: its health, never a sealed value. */
const adminColumns = [
  'id',
  'user_id',
  'integration_id',
  'status',
  'status_reason',
  'account_name',
  'account_email',
  'created_at',
  'updated_at',
  'last_refreshed_at',
  'next_refresh_at',
  'refresh_failures',
  'access_token_expires_at',
] as const;

export type AdminConnectionRow = Pick<ConnectionRow, (typeof adminColumns)[number]>;

/** An admin's view of a connection (`GET /api/v1/admin/connections`): health, never a token. */
export function toAdminConnectionView(row: AdminConnectionRow) {
  return {
    id: row.id,
    user: row.user_id,
    integration: row.integration_id,
    status: row.status,
    statusReason: row.status_reason,
    account: {
      ...(row.account_name === null ? {} : { name: row.account_name }),
      ...(row.account_email === null ? {} : { email: row.account_email }),
    },
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    lastRefreshedAt: iso(row.last_refreshed_at),
    nextRefreshAt: iso(row.next_refresh_at),
    refreshFailures: row.refresh_failures,
    accessTokenExpiresAt: iso(row.access_token_expires_at),
  };
}

/** What a failed refresh leaves on the row: its failure count, the scheduler's next try, the provider's not-before. */
export interface RefreshFailureColumns {
  refreshFailures: number;
  nextRefreshAt: Millis | null;
  notBefore: Millis | null;
}

/**
 * Connection rows. Every read is scoped to its owner unless the method says otherwise.
 *
 * The refresh lease lives here too (`tryAcquireRefreshLease` … `releaseRefreshLease`): at most one
 * holder per connection across instances, taken by one conditional UPDATE, kept alive by its
 * holder while its token request runs, and released by the same fenced UPDATE that writes the
 * refreshed tokens. Writes after a refresh are fenced by `version`: a row changed meanwhile
 * (refreshed elsewhere, reconnected, deleted) is never overwritten. @see RFC 9700 §4.14
 */
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
  /**
   * Connections of all users for the admin console, newest change first, filtered; never selects
   * a sealed column. `offset` pages through them.
   */
  async adminList(filter: {
    status?: ConnectionStatus;
    integration?: string;
    user?: string;
    limit: number;
    offset?: number;
  }): Promise<AdminConnectionRow[]> {
    let q = this.#db
      .selectFrom('connections')
      .select(adminColumns)
      .orderBy('updated_at', 'desc')
      .orderBy('id')
      .limit(filter.limit)
      .offset(filter.offset ?? 0);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.integration !== undefined) q = q.where('integration_id', '=', filter.integration);
    if (filter.user !== undefined) q = q.where('user_id', '=', filter.user);
    return q.execute();
  }

  /** One connection as the admin console shows it (no sealed column read). */
  async adminFind(id: string): Promise<AdminConnectionRow | undefined> {
    return this.#db.selectFrom('connections').select(adminColumns).where('id', '=', id).executeTakeFirst();
  }

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

  /** How many connections (of all users) an integration has. */
  async countForIntegration(integrationId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('connections')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('integration_id', '=', integrationId)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  /** Up to `limit` connections (of all users) of an integration, for removing them one by one. */
  async listForIntegration(integrationId: string, limit: number): Promise<ConnectionRow[]> {
    return this.#db
      .selectFrom('connections')
      .selectAll()
      .where('integration_id', '=', integrationId)
      .orderBy('id')
      .limit(limit)
      .execute();
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

  /**
   * Takes the refresh lease of `id` if it is free or has run out, in one UPDATE … RETURNING:
   * the row as it is now, whose `lease_taken_from` names the holder whose lease ran out
   * (null when it was free). Undefined when another holder's lease still runs (or no row).
   */
  async tryAcquireRefreshLease(
    id: string,
    owner: string,
    now: Millis,
    leaseMs: number,
  ): Promise<ConnectionRow | undefined> {
    return this.#db
      .updateTable('connections')
      .set((eb) => ({
        lease_owner: owner,
        lease_until: now + leaseMs,
        // The right-hand side reads the row as it was: who held the lease before us.
        lease_taken_from: eb.ref('lease_owner'),
      }))
      .where('id', '=', id)
      .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_until', '<', now)]))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Claims the refresh lease of up to `limit` due, active connections of enabled integrations at
   * once (the scheduler's batch; disabled ones are kept but not refreshed), oldest due first: one statement instead of a read and a lease
   * per row. Rows another instance holds are skipped. Returns the claimed rows with their provider.
   */
  async claimDueRefreshes(
    owner: string,
    now: Millis,
    leaseMs: number,
    limit: number,
    skipLocked = false,
  ): Promise<Array<ConnectionRow & { provider_id: string | null }>> {
    const leaseFree = sql<boolean>`(lease_owner is null or lease_until < ${now})`;
    const claim = async (db: Kysely<Database>) => {
      // A disabled integration, or one of a disabled provider: its connections are kept, not
      // refreshed. Asked first and passed as a list (almost always empty) rather than joined, so
      // that the candidates come from the due index alone.
      const disabled = (
        await db
          .selectFrom('integrations')
          .leftJoin('providers', 'providers.id', 'integrations.provider_id')
          .select('integrations.id')
          .where((eb) => eb.or([eb('integrations.enabled', '<>', 1), eb('providers.enabled', '<>', 1)]))
          .execute()
      ).map((r) => r.id);
      const candidates = db
        .selectFrom('connections')
        .select('id')
        .where('next_refresh_at', '<=', now)
        .where('status', '=', 'active')
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .$if(disabled.length > 0, (q) => q.where('integration_id', 'not in', disabled))
        .orderBy('next_refresh_at')
        .limit(limit);
      // PostgreSQL: rows another instance is claiming right now are passed over, not waited for
      // (its claim would commit and leave them to nobody here), so concurrent claims take
      // disjoint batches instead of queueing on each other's row locks. The locking subquery is a
      // materialized CTE: evaluated once (as a plain `IN (…)` it may be run again during the
      // update, and with SKIP LOCKED each run returns other rows, past the limit).
      const ids = skipLocked ? sql<string>`(select id from due)` : candidates;
      const base = skipLocked
        ? db.with(
            (cte) => cte('due').materialized(),
            () => candidates.forUpdate().skipLocked(),
          )
        : db;
      return (
        base
          .updateTable('connections')
          .set((eb) => ({
            lease_owner: owner,
            lease_until: now + leaseMs,
            lease_taken_from: eb.ref('lease_owner'),
          }))
          .where('id', 'in', ids)
          // Checked again on the row itself: PostgreSQL re-evaluates these on a row another
          // instance claimed between the subquery and the update, and skips it.
          .where(leaseFree)
          .where('status', '=', 'active')
          .where('next_refresh_at', '<=', now)
          .returningAll()
          .execute()
      );
    };
    // PostgreSQL, with statistics that do not yet know how many rows are due (a storm is exactly
    // when they are off), planned a scan of every due row and a sort of them all for each claim:
    // 25–50 ms a claim in a 6,000-row storm. Bitmap scans and sorts are ruled out for this
    // transaction, which leaves the due index read in order, stopping at the limit. (Within a
    // caller's transaction the settings last until it ends.)
    const planned = async (db: Kysely<Database>) => {
      await sql`select set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`.execute(
        db,
      );
      return claim(db);
    };
    const claimed = !skipLocked
      ? await claim(this.#db)
      : this.#db.isTransaction
        ? await planned(this.#db)
        : await this.#db.transaction().execute(planned);
    if (claimed.length === 0) return [];
    const providers = await this.#db
      .selectFrom('integrations')
      .select(['id', 'provider_id'])
      .where('id', 'in', [...new Set(claimed.map((r) => r.integration_id))])
      .execute();
    const providerOf = new Map(providers.map((p) => [p.id, p.provider_id]));
    return claimed
      .map((r) => ({ ...r, provider_id: providerOf.get(r.integration_id) ?? null }))
      .sort((a, b) => (a.next_refresh_at ?? 0) - (b.next_refresh_at ?? 0));
  }

  /** Keeps the holder's lease alive while its token request runs; false when it is no longer the holder. */
  async renewRefreshLease(id: string, owner: string, until: Millis): Promise<boolean> {
    const r = await this.#db
      .updateTable('connections')
      .set({ lease_until: until })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Releases the lease if `owner` still holds it. */
  async releaseRefreshLease(id: string, owner: string): Promise<void> {
    await this.#db
      .updateTable('connections')
      .set({ lease_owner: null, lease_until: null, lease_taken_from: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute();
  }

  /**
   * Records a failed refresh (transient or configuration) on the row it was read as, and releases
   * `owner`'s lease: failure count, the scheduler's next try, and the not-before every refresh
   * path honours.
   */
  async recordRefreshFailure(
    id: string,
    version: number,
    owner: string,
    failure: RefreshFailureColumns,
  ): Promise<void> {
    await this.#db
      .updateTable('connections')
      .set({
        refresh_failures: failure.refreshFailures,
        next_refresh_at: failure.nextRefreshAt,
        refresh_not_before: failure.notBefore,
        ...releasedBy(owner),
      })
      .where('id', '=', id)
      .where('version', '=', version)
      .execute();
  }

  /** Moves the scheduler's next look at the row (fenced by version), e.g. to a token's expiry. */
  async rescheduleRefresh(id: string, version: number, at: Millis | null): Promise<void> {
    await this.#db
      .updateTable('connections')
      .set({ next_refresh_at: at })
      .where('id', '=', id)
      .where('version', '=', version)
      .execute();
  }
}

/** Column values that release the lease only if `owner` holds it (a taker's lease stays). */
function releasedBy(owner: string) {
  const mine = sql<boolean>`lease_owner = ${owner}`;
  return {
    lease_owner: sql<string | null>`case when ${mine} then null else lease_owner end`,
    lease_until: sql<Millis | null>`case when ${mine} then null else lease_until end`,
    lease_taken_from: sql<string | null>`case when ${mine} then null else lease_taken_from end`,
  };
}
