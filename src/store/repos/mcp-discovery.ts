import type { Kysely } from 'kysely';
import type { Database, Millis } from '../types.js';

/** What discovery found at an MCP server: shown to users and administrators, never a secret. */
export interface McpDiscoverySummary {
  resource?: string;
  issuer?: string;
  registration?: 'configured' | 'cimd' | 'dynamic';
  scopes?: string[];
}

export interface McpDiscoveryStatus {
  integrationId: string;
  ok: boolean;
  /** A sentence naming what is wrong; undefined when discovery succeeded. */
  problem?: string;
  summary: McpDiscoverySummary;
  checkedAt: Millis;
}

/**
 * The outcome of the last discovery of each MCP server, shared by all instances: the
 * Integrations page shows a server's problem plainly even when another instance ran into it.
 */
export class McpDiscoveryRepository {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async record(status: McpDiscoveryStatus): Promise<void> {
    const values = {
      ok: status.ok ? 1 : 0,
      problem: status.problem ?? null,
      summary: JSON.stringify(status.summary),
      checked_at: status.checkedAt,
    };
    await this.#db
      .insertInto('mcp_discovery')
      .values({ integration_id: status.integrationId, ...values })
      .onConflict((oc) => oc.column('integration_id').doUpdateSet(values))
      .execute();
  }

  async list(): Promise<Map<string, McpDiscoveryStatus>> {
    const rows = await this.#db.selectFrom('mcp_discovery').selectAll().execute();
    return new Map(
      rows.map((r) => [
        r.integration_id,
        {
          integrationId: r.integration_id,
          ok: Number(r.ok) === 1,
          ...(r.problem === null ? {} : { problem: r.problem }),
          summary: JSON.parse(r.summary) as McpDiscoverySummary,
          checkedAt: Number(r.checked_at),
        },
      ]),
    );
  }
}
