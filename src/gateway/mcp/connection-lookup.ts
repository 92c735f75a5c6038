import type { ConnectionCache } from '../../connections/connection-cache.js';
import type { ConnectionRepository } from '../../store/repos/connections.js';
import type { ConnectionRow } from '../../store/types.js';

const maxRemembered = 10_000;

/**
 * A user's connection to an integration, for the gateway's hot path: the connection id is
 * remembered per user and integration, the row comes from the shared row cache (which the change
 * feed keeps current); a miss reads the database, so a new or replaced connection is seen at once.
 */
export class ConnectionLookup {
  readonly #cache: Pick<ConnectionCache, 'findForUser'>;
  readonly #repo: Pick<ConnectionRepository, 'findByUserAndIntegration' | 'listForUser'>;
  readonly #ids = new Map<string, string>();

  constructor(
    cache: Pick<ConnectionCache, 'findForUser'>,
    repo: Pick<ConnectionRepository, 'findByUserAndIntegration' | 'listForUser'>,
  ) {
    this.#cache = cache;
    this.#repo = repo;
  }

  async find(userId: string, integrationId: string): Promise<ConnectionRow | undefined> {
    const key = `${userId}\u0000${integrationId}`;
    const id = this.#ids.get(key);
    if (id !== undefined) {
      const row = await this.#cache.findForUser(userId, id);
      if (row !== undefined && row.integration_id === integrationId) return row;
    }
    const row = await this.#repo.findByUserAndIntegration(userId, integrationId);
    if (row === undefined) this.#ids.delete(key);
    else {
      if (this.#ids.size >= maxRemembered) this.#ids.delete(this.#ids.keys().next().value as string);
      this.#ids.set(key, row.id);
    }
    return row;
  }

  /** Every connection of the user (for the aggregate endpoint). */
  listForUser(userId: string): Promise<ConnectionRow[]> {
    return this.#repo.listForUser(userId);
  }
}
