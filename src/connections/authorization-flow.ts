import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import type { Sealer } from '../crypto/index.js';
import { Problem } from '../http/problem.js';
import { isSameBrowser } from '../identity/browser-binding.js';
import type { AuditLog } from '../notify/audit.js';
import type { Notifications } from '../notify/notifications.js';
import type { Webhooks } from '../notify/webhooks.js';
import { safeErrorCode } from '../oauth/error-code.js';
import { ProviderError } from '../oauth/errors.js';
import { isRegistrationRejected } from '../oauth/mcp/client-identity.js';
import { McpDiscoveryError } from '../oauth/mcp/errors.js';
import {
  AccountNotAcceptedError,
  AuthorizationDeniedError,
  AuthorizationResponseInvalidError,
  type OAuthClient,
} from '../oauth/oauth-client.js';
import { clientKeyOf, type ProviderClients } from '../oauth/registry.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/database.js';
import type { CatalogRepository, IntegrationRecord } from '../store/repos/catalog.js';
import type { PendingAuthorizationRepository } from '../store/repos/pending-authorizations.js';
import type { Clock } from '../support/clock.js';
import { sha256Hex } from '../support/hash.js';
import { mayAccess } from './access.js';
import type { ConnectionCache } from './connection-cache.js';
import { FlowConfirmations } from './flow-confirmations.js';
import { parkTokens } from './parked-tokens.js';
import type { RevocationQueue } from './revocations.js';
import { saveConnection } from './save-connection.js';

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
  /** The MCP gateway's URL elicitations: a flow that answers one marks it complete on success. */
  elicitations?: ElicitationLedger;
  /** Counts code exchanges in `nunq_token_requests_total` (grant `authorization_code`). */
  metrics?: Pick<Metrics, 'tokenRequests'>;
}

/** What the flow needs of the MCP gateway's URL elicitations (`/connect/:id?elicitation=…`). */
export interface ElicitationLedger {
  /** This user's unexpired elicitation, with the scopes it asks for (null: the integration's). */
  find(id: string, userId: string): Promise<{ integrationId: string; scopes: string[] | null } | undefined>;
  complete(id: string): Promise<void>;
}

const sha256 = sha256Hex;

/**
 * The authorization code flow with PKCE, policy side: who may start what, where the pending
 * state lives, and what a completed flow does to connections. The protocol steps are the
 * provider client's (oauth/). @see RFC 9700 §2.1 (PKCE, state), RFC 6749 §4.1
 */
export class AuthorizationFlow {
  readonly #d: AuthorizationFlowDeps;

  /** The answers to parked flows and to "replace the connected account?". */
  readonly confirmations: FlowConfirmations;

  constructor(deps: AuthorizationFlowDeps) {
    this.#d = deps;
    this.confirmations = new FlowConfirmations(deps);
  }

  #countExchange(integration: IntegrationRecord, outcome: string): void {
    this.#d.metrics?.tokenRequests.inc({
      provider: clientKeyOf(integration) ?? integration.id,
      grant: 'authorization_code',
      outcome,
    });
  }

  get redirectUri(): string {
    return `${this.#d.publicUrl}${callbackPath}`;
  }

  /** The MCP gateway's elicitations, when the gateway is wired (the Connect page looks them up). */
  get elicitations(): ElicitationLedger | undefined {
    return this.#d.elicitations;
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
    /** Scopes to ask for instead of the integration's (an MCP server's step-up). */
    scopes?: readonly string[] | undefined;
    /** The gateway's URL elicitation this flow answers (marked complete on success). */
    elicitationId?: string | undefined;
    /** The user's groups: an integration limited to others is not found. */
    groups: readonly string[];
  }): Promise<URL> {
    const integration = await offeredIntegration(this.#d.catalog, input.integrationId, input.groups);
    // An MCP server is discovered afresh for every Connect and Reconnect: its metadata may now
    // name another authorization server (whose own registration is then used), and a person
    // reconnecting is the moment to learn it. Refreshes keep using the cached client.
    const key = clientKeyOf(integration);
    if (integration.kind === 'mcp' && integration.providerId === null && key !== null)
      this.#d.clients.forget(key);
    const client = await this.#client(integration);
    let scopes: string[];
    try {
      scopes = client.scopesFor(input.scopes ?? integration.settings.scopes);
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
      scopes: input.scopes === undefined ? null : JSON.stringify(scopes),
      elicitation_id: input.elicitationId ?? null,
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
    if (integration === undefined || clientKeyOf(integration) === null || !integration.enabled) {
      return failed('integration_unavailable');
    }
    const codeVerifier = this.#d.sealer.open(p.code_verifier_sealed, {
      table: 'pending_authorizations',
      rowId: stateHash,
      field: 'code_verifier_sealed',
    });
    let tokens: TokenSet;
    let client: OAuthClient | undefined;
    try {
      client = await this.#client(integration);
      tokens = await client.exchangeCode({
        callbackUrl: input.callbackUrl,
        state,
        redirectUri: p.redirect_uri,
        codeVerifier,
        nonce: p.nonce,
        requestedScopes:
          p.scopes === null
            ? client.scopesFor(integration.settings.scopes)
            : (JSON.parse(p.scopes) as string[]),
        integrationApiBaseUrl: integration.settings.api?.baseUrl,
      });
      this.#countExchange(integration, 'ok');
    } catch (error) {
      if (error instanceof ProviderError) this.#countExchange(integration, error.kind);
      await this.#auditFailure(input.userId, p.integration_id, error);
      // An MCP server's client that failed for a reason of ours: discover (and register) again next time.
      if (
        client !== undefined &&
        (error instanceof ProviderError ? error.kind === 'config_error' : isRegistrationRejected(error))
      ) {
        await this.#d.clients.failed(integration, client, error);
      }
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
        elicitationId: p.elicitation_id,
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
    const saved = await saveConnection(
      this.#d,
      input.userId,
      integration.id,
      p.connection_id,
      tokens,
      p.return_to,
      false,
    );
    if (saved.outcome !== 'confirm' && p.elicitation_id !== null) {
      await this.#d.elicitations?.complete(p.elicitation_id);
    }
    return { ...saved, integrationId: integration.id, returnTo: p.return_to };
  }

  async #client(integration: IntegrationRecord) {
    try {
      return await this.#d.clients.forIntegration(integration);
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
}

/** Maps a provider failure at flow start to a problem the user can act on (never upstream text). */
function providerProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  if (error instanceof ProviderError && error.cause instanceof McpDiscoveryError) {
    // Our own sentence naming the URL or field at fault (never a response body or a token).
    const transient = error.kind === 'transient';
    return new Problem(
      transient ? 503 : 502,
      'mcp_discovery_failed',
      transient ? 'Service Unavailable' : 'Bad Gateway',
      `This MCP server cannot be connected: ${error.cause.message}`,
      { problem: error.cause.problem },
    );
  }
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

/**
 * The integration a user may connect now: 404 when there is none or the user is in none of its
 * groups; when an admin disabled it, 409 (`disabled: 'conflict'`, the API) or 404 (`'not_found'`,
 * the Connect page: a disabled integration is not offered at all).
 */
export async function offeredIntegration(
  catalog: Pick<CatalogRepository, 'getIntegration'>,
  integrationId: string,
  groups: readonly string[] | undefined,
  disabled: 'conflict' | 'not_found' = 'conflict',
): Promise<IntegrationRecord> {
  const integration = await catalog.getIntegration(integrationId);
  if (
    integration === undefined ||
    !mayAccess(integration, groups) ||
    (!integration.enabled && disabled === 'not_found')
  ) {
    throw new Problem(
      404,
      'integration_not_found',
      'Not Found',
      `There is no integration "${integrationId}".`,
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
  return integration;
}
