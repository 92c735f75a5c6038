import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as oauth from 'oauth4webapi';
import type { Sealer } from '../crypto/index.js';
import { Problem } from '../http/problem.js';
import { isSameBrowser } from '../identity/browser-binding.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import { safeErrorCode } from '../oauth/error-code.js';
import { ProviderError } from '../oauth/errors.js';
import {
  AccountNotAcceptedError,
  AuthorizationDeniedError,
  AuthorizationResponseInvalidError,
} from '../oauth/oauth-client.js';
import type { ProviderClients } from '../oauth/registry.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository } from '../store/repos/catalog.js';
import type { PendingAuthorizationRepository } from '../store/repos/pending-authorizations.js';
import type { Database } from '../store/types.js';
import type { Clock } from '../support/clock.js';
import { sha256Hex } from '../support/hash.js';
import type { ConnectionCache } from './connection-cache.js';
import { openParkedTokens, parkTokens, revokeDeclined } from './parked-tokens.js';
import { idleRefreshMs, nextRefreshAt } from './refresh-policy.js';
import type { RevocationQueue } from './revocations.js';

/** A pending authorization lives this long: the user has 10 minutes to sign in. */
export const authorizationTtlMs = 10 * 60 * 1000;

export const callbackPath = '/oauth/callback';
/** Where the callback sends a flow that this browser did not start, to be confirmed or cancelled. */
export const parkedFlowPath = '/oauth/confirm';

/** The callback could not be tied to a pending authorization of this user; nothing was changed. */
export class CallbackRejectedError extends Error {
  readonly code = 'callback_rejected';
  constructor(readonly reason: 'missing_state' | 'unknown' | 'foreign' | 'expired' | 'used') {
    super(`callback rejected: ${reason}`);
  }
}

export type CompletedOutcome =
  | { outcome: 'connected' | 'reconnected'; connectionId: string; integrationId: string; returnTo: string }
  | {
      outcome: 'confirm';
      confirmationId: string;
      connectionId: string;
      integrationId: string;
      returnTo: string;
    }
  | {
      /** Finished in a browser that did not start the flow: the tokens wait, sealed, for a click. */
      outcome: 'confirm_browser';
      confirmationId: string;
      integrationId: string;
      returnTo: string;
    }
  | { outcome: 'denied' | 'failed'; integrationId: string; returnTo: string; reason: string };

export interface AuthorizationFlowDeps {
  store: Store;
  catalog: CatalogRepository;
  pending: PendingAuthorizationRepository;
  clients: ProviderClients;
  sealer: Sealer;
  audit: AuditLog;
  webhooks: Webhooks;
  notifications: Notifications;
  clock: Clock;
  publicUrl: string;
  /** The hot path's row cache, evicted when a Reconnect replaces a connection's tokens. */
  cache?: ConnectionCache;
  /** Retries the revocation of declined tokens that failed transiently. */
  revocations?: RevocationQueue;
  logger?: Logger;
}

const sha256 = sha256Hex;

/**
 * The authorization code flow with PKCE, policy side: who may start what, where the pending
 * state lives, and what a completed flow does to connections. The protocol steps are the
 * provider client's (oauth/). @see RFC 9700 §2.1 (PKCE, state), RFC 6749 §4.1
 */
export class AuthorizationFlow {
  readonly #d: AuthorizationFlowDeps;

  constructor(deps: AuthorizationFlowDeps) {
    this.#d = deps;
  }

  get redirectUri(): string {
    return `${this.#d.publicUrl}${callbackPath}`;
  }

  /**
   * Starts a flow for `userId` on an integration (a Reconnect when `connectionId` is given):
   * stores the pending authorization (state hash, sealed PKCE verifier, nonce, expected
   * issuer, return_to, and the starting browser's binding: null when started with a bearer
   * token) and returns the provider's authorization URL.
   */
  async start(input: {
    userId: string;
    integrationId: string;
    returnTo: string;
    connectionId?: string;
    /** `browserBindingOf` the session that started it; only that browser finishes without a click. */
    browserBinding?: string | null | undefined;
  }): Promise<URL> {
    const integration = await this.#d.catalog.getIntegration(input.integrationId);
    if (integration === undefined) {
      throw new Problem(
        404,
        'integration_not_found',
        'Not Found',
        `There is no integration "${input.integrationId}".`,
      );
    }
    if (!integration.enabled) {
      throw new Problem(
        409,
        'integration_disabled',
        'Conflict',
        `The integration "${integration.name}" is disabled.`,
      );
    }
    if (integration.kind !== 'oauth' || integration.providerId === null) {
      throw new Problem(
        501,
        'integration_not_found',
        'Not Implemented',
        'Connecting MCP servers is not available yet.',
      );
    }
    const client = await this.#client(integration.providerId);
    let scopes: string[];
    try {
      scopes = client.scopesFor(integration.settings.scopes);
    } catch (error) {
      throw providerProblem(error);
    }
    const state = randomBytes(32).toString('base64url');
    const stateHash = sha256(state);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const nonce = scopes.includes('openid') ? randomBytes(24).toString('base64url') : null;
    const url = await client.authorizationUrl({
      redirectUri: this.redirectUri,
      scopes,
      state,
      codeVerifier,
      nonce,
      ...(integration.settings.authorizationParams
        ? { extraParams: integration.settings.authorizationParams }
        : {}),
    });
    const now = this.#d.clock.now();
    await this.#d.pending.create({
      state_hash: stateHash,
      user_id: input.userId,
      integration_id: integration.id,
      connection_id: input.connectionId ?? null,
      code_verifier_sealed: this.#d.sealer.seal(codeVerifier, {
        table: 'pending_authorizations',
        rowId: stateHash,
        field: 'code_verifier_sealed',
      }),
      nonce,
      expected_issuer: client.expectedIssuer,
      redirect_uri: this.redirectUri,
      return_to: input.returnTo,
      created_at: now,
      expires_at: now + authorizationTtlMs,
      consumed_at: null,
      browser_binding: input.browserBinding ?? null,
    });
    return url;
  }

  /**
   * Finishes a flow from the callback URL: consumes the state (single use, this user's, unexpired),
   * validates the response (state, iss, error), exchanges the code, and creates the connection or
   * replaces the tokens of the same one, all or nothing. When this browser did not start the flow
   * (started with a bearer, or in another browser or session), nothing is stored: the tokens are
   * parked sealed for 10 minutes and the user is asked (a login CSRF cannot finish a flow).
   */
  async complete(input: {
    userId: string;
    callbackUrl: URL;
    /** `browserBindingOf` the callback's session; undefined without one. */
    browserBinding?: string | undefined;
  }): Promise<CompletedOutcome> {
    const state = input.callbackUrl.searchParams.get('state');
    if (state === null || state.length === 0 || state.length > 200)
      throw new CallbackRejectedError('missing_state');
    const stateHash = sha256(state);
    const consumed = await this.#d.pending.consume(stateHash, input.userId, this.#d.clock.now());
    if (!consumed.ok) throw new CallbackRejectedError(consumed.reason);
    const p = consumed.row;
    const integration = await this.#d.catalog.getIntegration(p.integration_id);
    const failed = (reason: string): CompletedOutcome => ({
      outcome: 'failed',
      integrationId: p.integration_id,
      returnTo: p.return_to,
      reason,
    });
    if (integration === undefined || integration.providerId === null || !integration.enabled) {
      return failed('integration_unavailable');
    }
    const codeVerifier = this.#d.sealer.open(p.code_verifier_sealed, {
      table: 'pending_authorizations',
      rowId: stateHash,
      field: 'code_verifier_sealed',
    });
    let tokens: TokenSet;
    try {
      const client = await this.#client(integration.providerId);
      tokens = await client.exchangeCode({
        callbackUrl: input.callbackUrl,
        state,
        redirectUri: p.redirect_uri,
        codeVerifier,
        nonce: p.nonce,
        requestedScopes: client.scopesFor(integration.settings.scopes),
      });
    } catch (error) {
      await this.#auditFailure(input.userId, p.integration_id, error);
      if (error instanceof AuthorizationDeniedError) {
        return {
          outcome: 'denied',
          integrationId: p.integration_id,
          returnTo: p.return_to,
          reason: safeErrorCode(error.providerError),
        };
      }
      if (error instanceof AuthorizationResponseInvalidError) return failed('response_invalid');
      // Its own reason, not `transient`: the same account can never connect here.
      if (error instanceof AccountNotAcceptedError) return failed(error.code);
      if (error instanceof ProviderError) return failed(error.kind);
      if (error instanceof Problem) return failed(error.code);
      throw error;
    }
    if (!isSameBrowser(p.browser_binding, input.browserBinding)) {
      const now = this.#d.clock.now();
      const confirmationId = await parkTokens(this.#d.store.db, this.#d.sealer, {
        kind: p.connection_id === null ? 'connect' : 'reconnect',
        userId: input.userId,
        connectionId: p.connection_id ?? '',
        integrationId: integration.id,
        tokens,
        returnTo: p.return_to,
        browserBinding: input.browserBinding ?? null,
        now,
        expiresAt: now + authorizationTtlMs,
      });
      await this.#d.audit.record({
        actor: input.userId,
        action: 'authorization.parked',
        targetType: 'integration',
        targetId: integration.id,
        data: { reason: p.browser_binding === null ? 'started_with_bearer' : 'other_browser' },
      });
      return {
        outcome: 'confirm_browser',
        confirmationId,
        integrationId: integration.id,
        returnTo: p.return_to,
      };
    }
    const saved = await this.#save(input.userId, integration.id, p.connection_id, tokens, p.return_to, false);
    return { ...saved, integrationId: integration.id, returnTo: p.return_to };
  }

  /**
   * A flow parked because it finished in a browser that did not start it, for its page (no
   * tokens): only its user, in the browser that received the callback, and only unexpired.
   */
  async parkedFlow(userId: string, id: string, browserBinding: string | undefined) {
    const row = await this.#parked(userId, id, browserBinding);
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
  async resolveParkedFlow(
    userId: string,
    id: string,
    browserBinding: string | undefined,
    decision: 'connect' | 'cancel',
  ): Promise<CompletedOutcome | undefined> {
    const row = await this.#parked(userId, id, browserBinding);
    if (row === undefined) return undefined;
    const deleted = await this.#d.store.db
      .deleteFrom('pending_confirmations')
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(deleted.numDeletedRows) !== 1) return undefined; // answered concurrently
    const tokens = openParkedTokens(this.#d.sealer, row);
    if (decision === 'cancel') {
      const integration = await this.#d.catalog.getIntegration(row.integration_id);
      const revocation =
        integration?.providerId == null
          ? 'unsupported'
          : await revokeDeclined(this.#d, integration.providerId, row.id, tokens);
      await this.#d.audit.record({
        actor: userId,
        action: 'authorization.cancelled',
        targetType: 'integration',
        targetId: row.integration_id,
        data: { revocation },
      });
      return {
        outcome: 'failed',
        integrationId: row.integration_id,
        returnTo: row.return_to,
        reason: 'cancelled',
      };
    }
    const reconnectId = row.kind === 'reconnect' ? row.connection_id : null;
    const saved = await this.#save(userId, row.integration_id, reconnectId, tokens, row.return_to, false);
    return { ...saved, integrationId: row.integration_id, returnTo: row.return_to };
  }

  async #parked(userId: string, id: string, browserBinding: string | undefined) {
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
  async pendingConfirmation(userId: string, id: string) {
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
  async resolveConfirmation(
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
    const saved = await this.#save(
      userId,
      row.integration_id,
      row.connection_id,
      tokens,
      row.return_to,
      true,
    );
    return { ...saved, integrationId: row.integration_id, returnTo: row.return_to };
  }

  /** How often an idle grant of this integration's provider is refreshed to keep it alive (null: never). */
  async #idleRefreshMs(integrationId: string): Promise<number | null> {
    const integration = await this.#d.catalog.getIntegration(integrationId);
    const provider = integration?.providerId
      ? await this.#d.catalog.getProvider(integration.providerId)
      : undefined;
    return idleRefreshMs(provider);
  }

  async #client(providerId: string) {
    try {
      return await this.#d.clients.forProvider(providerId);
    } catch (error) {
      throw providerProblem(error);
    }
  }

  async #auditFailure(userId: string, integrationId: string, error: unknown): Promise<void> {
    await this.#d.audit.record({
      actor: userId,
      action: 'authorization.failed',
      targetType: 'integration',
      targetId: integrationId,
      data: {
        reason:
          error instanceof AuthorizationDeniedError
            ? safeErrorCode(error.providerError)
            : error instanceof ProviderError
              ? `${error.kind}${error.providerError ? `:${safeErrorCode(error.providerError)}` : ''}`
              : ((error as { code?: string }).code ?? 'error'),
      },
    });
  }

  /** Creates the connection or replaces the tokens of the existing one, with audit and webhook, in one transaction. */
  async #save(
    userId: string,
    integrationId: string,
    reconnectId: string | null,
    tokens: TokenSet,
    returnTo: string,
    confirmed: boolean,
    attempt = 1,
  ): Promise<
    | { outcome: 'connected' | 'reconnected'; connectionId: string }
    | { outcome: 'confirm'; confirmationId: string; connectionId: string }
  > {
    const now = this.#d.clock.now();
    // Read before the transaction: on SQLite a query outside `trx` while it is open would deadlock.
    const idleMs = await this.#idleRefreshMs(integrationId);
    const saving = this.#d.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('connections')
        .select(['id', 'version', 'account_id'])
        .where('user_id', '=', userId)
        .where(reconnectId === null ? 'integration_id' : 'id', '=', reconnectId ?? integrationId)
        .executeTakeFirst();
      const id = existing?.id ?? randomUUID();
      if (!confirmed && existing?.account_id != null && tokens.account.id !== existing.account_id) {
        // Signed in as someone else, or as someone the provider did not name (no ID token, a
        // failed userinfo): keep the new tokens aside (sealed) and ask before replacing.
        const confirmationId = await parkTokens(trx as unknown as Kysely<Database>, this.#d.sealer, {
          kind: 'account',
          userId,
          connectionId: id,
          integrationId,
          tokens,
          returnTo,
          browserBinding: null,
          now,
          expiresAt: now + authorizationTtlMs,
        });
        return { outcome: 'confirm' as const, confirmationId, connectionId: id };
      }
      const values = {
        status: 'active' as const,
        status_reason: null,
        account_id: tokens.account.id ?? null,
        account_name: tokens.account.name ?? null,
        account_email: tokens.account.email ?? null,
        scopes: JSON.stringify(tokens.scopes ?? []),
        ...this.#sealTokens(id, tokens),
        token_type: tokens.tokenType,
        access_token_expires_at: tokens.expiresAt,
        last_refreshed_at: now,
        next_refresh_at: nextRefreshAt(tokens.expiresAt, now, { idleMs }),
        refresh_failures: 0,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      };
      if (existing === undefined) {
        await trx
          .insertInto('connections')
          .values({
            id,
            user_id: userId,
            integration_id: integrationId,
            ...values,
            version: 0,
            created_at: now,
          })
          .execute();
      } else {
        const written = await trx
          .updateTable('connections')
          .set({ ...values, version: existing.version + 1 })
          .where('id', '=', id)
          .where('version', '=', existing.version)
          .executeTakeFirst();
        if (Number(written.numUpdatedRows) !== 1) throw new StaleConnectionError();
      }
      const outcome: 'connected' | 'reconnected' = existing === undefined ? 'connected' : 'reconnected';
      const db = trx as unknown as Kysely<Database>;
      await this.#d.notifications.resolveForConnection(db, id);
      await this.#d.notifications.publish(db, userId, 'connection.status', {
        connectionId: id,
        integration: integrationId,
        status: 'active',
      });
      const event = outcome === 'connected' ? 'connection.created' : 'connection.reconnected';
      await this.#d.audit.record(
        {
          actor: userId,
          action: event,
          targetType: 'connection',
          targetId: id,
          data: { integration: integrationId, account: tokens.account.id ?? null },
        },
        trx,
      );
      await this.#d.webhooks.enqueue(db, event, {
        connectionId: id,
        userId,
        integration: integrationId,
      });
      return { outcome, connectionId: id };
    });
    let saved: Awaited<typeof saving>;
    try {
      saved = await saving;
    } catch (error) {
      // A refresh committed between our read and our fenced write (PostgreSQL, read committed):
      // nothing was written; save again over the fresh row, so the new tokens are never lost
      // and the version always moves forward.
      if (error instanceof StaleConnectionError && attempt < 5) {
        return this.#save(userId, integrationId, reconnectId, tokens, returnTo, confirmed, attempt + 1);
      }
      throw error;
    }
    this.#d.cache?.invalidate(saved.connectionId);
    return saved;
  }

  #sealTokens(connectionId: string, tokens: TokenSet) {
    const seal = (value: string | undefined, field: string) =>
      value === undefined
        ? null
        : this.#d.sealer.seal(value, { table: 'connections', rowId: connectionId, field });
    return {
      access_token_sealed: seal(tokens.accessToken, 'access_token_sealed'),
      refresh_token_sealed: seal(tokens.refreshToken, 'refresh_token_sealed'),
      id_token_sealed: seal(tokens.idToken, 'id_token_sealed'),
    };
  }
}

/** The connection changed between the Reconnect's read and its fenced write (rolls the transaction back). */
class StaleConnectionError extends Error {
  readonly code = 'stale_connection';
}

/** Maps a provider failure at flow start to a problem the user can act on (never upstream text). */
function providerProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  if (error instanceof ProviderError) {
    return error.kind === 'transient'
      ? new Problem(
          503,
          'provider_unavailable',
          'Service Unavailable',
          'The provider cannot be reached right now; try again shortly.',
        )
      : new Problem(
          502,
          'provider_misconfigured',
          'Bad Gateway',
          'This integration is misconfigured; an administrator has to fix it.',
        );
  }
  throw error;
}
