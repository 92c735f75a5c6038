import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../../crypto/index.js';
import type { Database, Millis } from '../types.js';

/** A client registered dynamically at an MCP server's authorization server. @see RFC 7591 §3.2.1 */
export interface McpRegistration {
  issuer: string;
  redirectUri: string;
  clientId: string;
  /** The registration response as the server sent it (client secret, registration access token…). */
  response: Readonly<Record<string, unknown>>;
  createdAt: Millis;
  /** When the client secret expires; null when it does not. */
  expiresAt: Millis | null;
}

const field = 'registration_sealed';

/**
 * Dynamic registrations, one per issuer and redirect URI, shared by all users and instances; the
 * response is sealed at rest. Of two instances registering at once, the first stored wins and
 * both use it; a rejected registration is dropped only while it is still the stored one.
 */
export class McpRegistrations {
  readonly #db: Kysely<Database>;
  readonly #sealer: Sealer;

  constructor(db: Kysely<Database>, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
  }

  /** The stored registration for this issuer and redirect URI, expired or not. */
  async get(issuer: string, redirectUri: string): Promise<McpRegistration | undefined> {
    const row = await this.#db
      .selectFrom('mcp_registrations')
      .selectAll()
      .where('issuer', '=', issuer)
      .where('redirect_uri', '=', redirectUri)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const response = JSON.parse(
      this.#sealer.open(row.registration_sealed, { table: 'mcp_registrations', rowId: row.id, field }),
    ) as Record<string, unknown>;
    return {
      issuer: row.issuer,
      redirectUri: row.redirect_uri,
      clientId: row.client_id,
      response,
      createdAt: Number(row.created_at),
      expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    };
  }

  /**
   * Stores a registration unless one is already stored for its issuer and redirect URI (one
   * conditional INSERT, so concurrent instances agree), and returns the one stored: this one, or
   * the earlier winner.
   */
  async save(registration: McpRegistration): Promise<McpRegistration> {
    const id = randomUUID();
    await this.#db
      .insertInto('mcp_registrations')
      .values({
        id,
        issuer: registration.issuer,
        redirect_uri: registration.redirectUri,
        client_id: registration.clientId,
        registration_sealed: this.#sealer.seal(JSON.stringify(registration.response), {
          table: 'mcp_registrations',
          rowId: id,
          field,
        }),
        created_at: registration.createdAt,
        expires_at: registration.expiresAt,
      })
      .onConflict((oc) => oc.columns(['issuer', 'redirect_uri']).doNothing())
      .execute();
    const stored = await this.get(registration.issuer, registration.redirectUri);
    if (stored === undefined) throw new Error('the registration vanished right after it was stored');
    return stored;
  }

  /**
   * Drops the registrations at `issuer` (only the one for `redirectUri`, and only while its client
   * id is still `clientId`, when given), so the next use registers anew: for a registration the
   * server rejects (`invalid_client`, a refused redirect URI) or whose secret expired. The caller
   * redoes a registration at most once per failure.
   */
  async dropRegistration(
    issuer: string,
    options: { redirectUri?: string; clientId?: string } = {},
  ): Promise<number> {
    let query = this.#db.deleteFrom('mcp_registrations').where('issuer', '=', issuer);
    if (options.redirectUri !== undefined) query = query.where('redirect_uri', '=', options.redirectUri);
    if (options.clientId !== undefined) query = query.where('client_id', '=', options.clientId);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
