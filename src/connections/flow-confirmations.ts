import type { Sealer } from '../crypto/index.js';
import { isSameBrowser } from '../identity/browser-binding.js';
import type { AuditLog } from '../notify/audit.js';
import { clientKeyOf, type ProviderClients } from '../oauth/registry.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { Logger } from '../observability/logger.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { CompletedOutcome, ElicitationLedger } from './authorization-flow.js';
import { openParkedTokens, revokeDeclined } from './parked-tokens.js';
import type { RevocationQueue } from './revocations.js';
import { type SaveConnectionDeps, saveConnection } from './save-connection.js';

export interface FlowConfirmationsDeps extends SaveConnectionDeps {
  catalog: CatalogRepository;
  sealer: Sealer;
  audit: AuditLog;
  clients: ProviderClients;
  revocations?: RevocationQueue | undefined;
  logger?: Logger | undefined;
  /** The MCP gateway's elicitations: a confirmed parked flow completes the one it answers. */
  elicitations?: Pick<ElicitationLedger, 'complete'> | undefined;
}

/**
 * The questions a finished flow can leave for its user, each answered once with the CSRF
 * token: a flow that finished in a browser that did not start it (`parked`), and a Reconnect
 * that signed in as another account (`account`). Their tokens wait sealed in
 * `pending_confirmations` for 10 minutes; nothing is stored on a connection before the answer.
 */
export class FlowConfirmations {
  readonly #d: FlowConfirmationsDeps;

  constructor(deps: FlowConfirmationsDeps) {
    this.#d = deps;
  }

  /**
   * A flow parked because it finished in a browser that did not start it, for its page (no
   * tokens): only its user, in the browser that received the callback, and only unexpired.
   */
  async parked(userId: string, id: string, browserBinding: string | undefined) {
    const row = await this.#findParked(userId, id, browserBinding);
    if (row === undefined) return undefined;
    return {
      id: row.id,
      integrationId: row.integration_id,
      reconnect: row.kind === 'reconnect',
      account: JSON.parse(row.account) as TokenSet['account'],
    };
  }

  /**
   * Answers a parked flow: `connect` stores its tokens as the flow would have (a Reconnect that
   * signed in as another account still asks about that); `cancel` discards them and revokes them
   * at the provider where it can. Either way the parked row goes first, so it is answered once.
   */
  async resolveParked(
    userId: string,
    id: string,
    browserBinding: string | undefined,
    decision: 'connect' | 'cancel',
  ): Promise<CompletedOutcome | undefined> {
    const row = await this.#findParked(userId, id, browserBinding);
    if (row === undefined) return undefined;
    const deleted = await this.#d.store.db
      .deleteFrom('pending_confirmations')
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(deleted.numDeletedRows) !== 1) return undefined; // answered concurrently
    const tokens = openParkedTokens(this.#d.sealer, row);
    const integration = await this.#d.catalog.getIntegration(row.integration_id);
    const clientKey = integration === undefined ? null : clientKeyOf(integration);
    const usable = integration?.enabled === true && clientKey !== null;
    if (decision === 'cancel' || !usable) {
      const revocation =
        clientKey === null
          ? 'unsupported'
          : (await this.#mayShareGrant(row.integration_id, tokens.account.id))
            ? 'skipped_shared_grant'
            : await revokeDeclined(this.#d, clientKey, row.id, tokens);
      await this.#d.audit.record({
        actor: userId,
        action: 'authorization.cancelled',
        targetType: 'integration',
        targetId: row.integration_id,
        data: { revocation, ...(usable ? {} : { reason: 'integration_unavailable' }) },
      });
      return {
        outcome: 'failed',
        integrationId: row.integration_id,
        returnTo: row.return_to,
        reason: usable ? 'cancelled' : 'integration_unavailable',
      };
    }
    const reconnectId = row.kind === 'reconnect' ? row.connection_id : null;
    const saved = await saveConnection(
      this.#d,
      userId,
      row.integration_id,
      reconnectId,
      tokens,
      row.return_to,
      false,
    );
    if (saved.outcome !== 'confirm' && row.elicitation_id !== null) {
      await this.#d.elicitations?.complete(row.elicitation_id);
    }
    return { ...saved, integrationId: row.integration_id, returnTo: row.return_to };
  }

  /**
   * Whether declined tokens may belong to the same grant as a connection we keep: many providers
   * (oidc-provider, Google, Entra) keep one grant per account and client, and revoking one of its
   * refresh tokens ends all of it (RFC 7009 §2.1), so a Cancel would disconnect the user's working
   * connection (or another user's of the same account). Then the declined tokens are only
   * discarded. When the account is unknown, any connection of the integration may share it.
   */
  async #mayShareGrant(integrationId: string, accountId: string | undefined): Promise<boolean> {
    let q = this.#d.store.db
      .selectFrom('connections')
      .select('id')
      .where('integration_id', '=', integrationId)
      .limit(1);
    if (accountId !== undefined) {
      q = q.where((eb) => eb.or([eb('account_id', '=', accountId), eb('account_id', 'is', null)]));
    }
    return (await q.executeTakeFirst()) !== undefined;
  }

  async #findParked(userId: string, id: string, browserBinding: string | undefined) {
    const row = await this.#d.store.db
      .selectFrom('pending_confirmations')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('kind', 'in', ['connect', 'reconnect'])
      .where('expires_at', '>', this.#d.clock.now())
      .executeTakeFirst();
    // Only the browser the provider sent back may answer: not the flow's starter elsewhere.
    return row !== undefined && isSameBrowser(row.browser_binding, browserBinding) ? row : undefined;
  }

  /** The replacement waiting for confirmation, for the confirm page (no tokens). */
  async pendingAccount(userId: string, id: string) {
    const row = await this.#d.store.db
      .selectFrom('pending_confirmations')
      .select(['id', 'connection_id', 'integration_id', 'account', 'return_to'])
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('kind', '=', 'account')
      .where('expires_at', '>', this.#d.clock.now())
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const current = await this.#d.store.db
      .selectFrom('connections')
      .select(['account_id', 'account_name', 'account_email'])
      .where('id', '=', row.connection_id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return {
      id: row.id,
      connectionId: row.connection_id,
      integrationId: row.integration_id,
      returnTo: row.return_to,
      newAccount: JSON.parse(row.account) as TokenSet['account'],
      currentAccount: {
        ...(current?.account_id ? { id: current.account_id } : {}),
        ...(current?.account_name ? { name: current.account_name } : {}),
        ...(current?.account_email ? { email: current.account_email } : {}),
      },
    };
  }

  /**
   * Answers a pending "different account" confirmation: `replace` stores the new tokens on the
   * same connection id; `keep` discards them. Either way the pending row (and its sealed tokens) goes.
   */
  async resolveAccount(
    userId: string,
    id: string,
    decision: 'replace' | 'keep',
  ): Promise<CompletedOutcome | undefined> {
    const row = await this.#d.store.db
      .selectFrom('pending_confirmations')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('kind', '=', 'account')
      .where('expires_at', '>', this.#d.clock.now())
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const deleted = await this.#d.store.db
      .deleteFrom('pending_confirmations')
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(deleted.numDeletedRows) !== 1) return undefined; // answered concurrently
    if (decision === 'keep') {
      return {
        outcome: 'failed',
        integrationId: row.integration_id,
        returnTo: row.return_to,
        reason: 'kept_account',
      };
    }
    const tokens = openParkedTokens(this.#d.sealer, row);
    const saved = await saveConnection(
      this.#d,
      userId,
      row.integration_id,
      row.connection_id,
      tokens,
      row.return_to,
      true,
    );
    return { ...saved, integrationId: row.integration_id, returnTo: row.return_to };
  }
}
