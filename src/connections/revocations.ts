import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import { ProviderError } from '../oauth/errors.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { RevocationsTable } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import { refreshBackoffMs } from './refresh-outcomes.js';

export const maxRevocationAttempts = 10;

/**
 * Revocations that failed transiently at Disconnect, retried in the background with backoff so
 * a disconnected grant does not stay alive at the provider. The token is kept sealed only until
 * the revocation succeeds or is given up. @see RFC 7009 §2
 */
export class RevocationQueue {
  readonly #d: { store: Store; sealer: Sealer; clients: ProviderClients; clock: Clock; logger: Logger };
  readonly #leaseMs: number;

  constructor(deps: {
    store: Store;
    sealer: Sealer;
    clients: ProviderClients;
    clock: Clock;
    logger: Logger;
    /** How long a claimed row is ours; must exceed one revocation request's timeout (default 60 s). */
    leaseMs?: number;
  }) {
    this.#d = deps;
    this.#leaseMs = deps.leaseMs ?? 60_000;
  }

  async enqueue(e: {
    providerId: string;
    connectionId: string;
    token: string;
    hint: 'refresh_token' | 'access_token';
  }): Promise<void> {
    const id = randomUUID();
    const now = this.#d.clock.now();
    await this.#d.store.db
      .insertInto('revocations')
      .values({
        id,
        provider_id: e.providerId,
        connection_id: e.connectionId,
        token_sealed: this.#d.sealer.seal(e.token, {
          table: 'revocations',
          rowId: id,
          field: 'token_sealed',
        }),
        token_type_hint: e.hint,
        attempts: 1,
        next_attempt_at: now + refreshBackoffMs(1),
        lease_until: null,
        last_error: null,
        created_at: now,
        done_at: null,
      })
      .execute();
  }

  /**
   * Retries what is due, one at a time; each row is claimed by a compare-and-set lease taken when
   * it is sent (not once per batch, which a slow batch would outlive), so instances share the
   * work and no token is sent twice.
   */
  async retryDue(limit = 20): Promise<number> {
    const due = await this.#d.store.db
      .selectFrom('revocations')
      .select('id')
      .where('next_attempt_at', '<=', this.#d.clock.now())
      .where('done_at', 'is', null)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', this.#d.clock.now())]))
      .limit(limit)
      .execute();
    let done = 0;
    for (const { id } of due) {
      const claim = await this.#claim(id);
      if (claim === undefined) continue;
      const { row: r, leaseUntil } = claim;
      let error: string | null = null;
      try {
        const token = this.#d.sealer.open(r.token_sealed!, {
          table: 'revocations',
          rowId: r.id,
          field: 'token_sealed',
        });
        const client = await this.#d.clients.forKey(r.provider_id, { evenDisabled: true });
        await client.revoke(token, r.token_type_hint);
      } catch (e) {
        error = e instanceof ProviderError ? e.kind : ((e as { code?: string }).code ?? 'error');
      }
      const attempts = r.attempts + 1;
      const finished = error === null || attempts >= maxRevocationAttempts;
      await this.#d.store.db
        .updateTable('revocations')
        .set({
          attempts,
          last_error: error,
          lease_until: null,
          ...(finished
            ? { done_at: this.#d.clock.now(), token_sealed: null, next_attempt_at: null }
            : { next_attempt_at: this.#d.clock.now() + refreshBackoffMs(attempts) }),
        })
        .where('id', '=', r.id)
        .where('lease_until', '=', leaseUntil)
        .execute();
      if (error === null) done++;
      else if (finished) this.#d.logger.warn({ revocation: r.id, error }, 'revocation given up');
    }
    return done;
  }

  /**
   * Claims one row if it is still unfinished, due and unleased as of now, and reads it again
   * (the batch's copy may be stale: another instance may have finished it). The lease's end
   * fences the outcome write: a later claim always ends later.
   */
  async #claim(id: string): Promise<{ row: Selectable<RevocationsTable>; leaseUntil: number } | undefined> {
    const now = this.#d.clock.now();
    const leaseUntil = now + this.#leaseMs;
    const claimed = await this.#d.store.db
      .updateTable('revocations')
      .set({ lease_until: leaseUntil })
      .where('id', '=', id)
      .where('done_at', 'is', null)
      .where('token_sealed', 'is not', null)
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return undefined;
    const row = await this.#d.store.db
      .selectFrom('revocations')
      .selectAll()
      .where('id', '=', id)
      .where('lease_until', '=', leaseUntil)
      .executeTakeFirst();
    return row === undefined ? undefined : { row, leaseUntil };
  }
}
