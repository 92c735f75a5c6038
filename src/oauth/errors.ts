import * as oauth from 'oauth4webapi';
import { OutboundBlockedError } from './outbound.js';

/**
 * What a failed provider call means for a connection. Decided once, here, for every provider:
 * - `reauth_required`: the grant is gone (revoked, expired, needs interaction); the user must Reconnect.
 * - `config_error`: the client is misconfigured (bad secret, unknown app); an admin problem.
 * - `transient`: the provider or network hiccuped; retry later, change nothing.
 * - `invalid_request`: our own request was refused (bad scope, bad code); this flow failed, nothing else.
 */
export type FailureKind = 'reauth_required' | 'config_error' | 'transient' | 'invalid_request';

/** A provider call that failed, with what the provider said (error code, description, status), classified. */
export class ProviderError extends Error {
  readonly code = 'provider_error';
  readonly kind: FailureKind;
  readonly providerError: string | undefined;
  readonly providerErrorDescription: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  /**
   * The provider throttled us (HTTP 429, or a throttling code such as Entra's AADSTS50196 "request
   * loop", which arrives as `invalid_grant`): always `transient`, and no token request for this
   * connection should follow before `retryAfterMs` (or a default pause when it gave none).
   */
  readonly throttled: boolean;

  constructor(
    kind: FailureKind,
    message: string,
    details: {
      providerError?: string | undefined;
      description?: string | undefined;
      status?: number | undefined;
      retryAfterMs?: number | undefined;
      throttled?: boolean | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: details.cause });
    this.kind = kind;
    this.providerError = details.providerError;
    this.providerErrorDescription = details.description;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.throttled = details.throttled ?? false;
  }
}

/** Whether an error, or any error in its cause chain, is a refusal by the outbound policy. */
export function isOutboundBlocked(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof OutboundBlockedError) return true;
  }
  return false;
}

/** Entra AADSTS codes that mean the user must sign in again. */
const entraReauth = new Set([
  50173, 50076, 50079, 50078, 50158, 65001, 70008, 700082, 70043, 700084, 50132, 50133, 54005, 70000,
]);
/** Entra AADSTS codes that mean the app registration is wrong (admin problem). */
const entraConfig = new Set([
  7000215, 7000222, 700016, 7000218, 90002, 700054, 50011, 50194, 900971, 500011, 90094,
]);
/** Entra AADSTS codes that are throttling or temporary service trouble. */
const entraTransient = new Set([50196, 90033, 80001, 80002, 80005, 90006]);
/** Of those, the ones that say we are sending too much (back off before asking again). */
const entraThrottling = new Set([50196]);

function entraCodes(description: string | undefined, body: unknown): number[] {
  const codes: number[] = [];
  const fromBody = (body as { error_codes?: unknown } | undefined)?.error_codes;
  if (Array.isArray(fromBody)) for (const c of fromBody) if (typeof c === 'number') codes.push(c);
  const m = description === undefined ? null : /AADSTS(\d+)/.exec(description);
  if (m !== null) codes.push(Number(m[1]));
  return codes;
}

function retryAfter(headers: Headers | undefined, now: number): number | undefined {
  const value = headers?.get('retry-after');
  if (value === null || value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Classifies any failure of a token-endpoint call (code exchange, refresh, revocation) into a
 * {@link ProviderError}. Branches on error codes and HTTP status, never on message text, and
 * never copies a response body into the message. @see RFC 6749 §5.2
 */
export function classifyTokenError(error: unknown, now = Date.now()): ProviderError {
  if (error instanceof ProviderError) return error;
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    // A 401 with a challenge is how a server says the client authentication failed (RFC 6749 §5.2).
    const status = error.status;
    const details = { status, cause: error, retryAfterMs: retryAfter(error.response?.headers, now) };
    if (status === 401 || status === 403)
      return new ProviderError('config_error', 'provider rejected the client', details);
    return new ProviderError('transient', `provider answered HTTP ${status} with a challenge`, details);
  }
  if (error instanceof oauth.ResponseBodyError) {
    const providerError = error.error;
    const description = error.error_description;
    const status = error.status;
    const details = {
      providerError,
      description,
      status,
      cause: error,
      retryAfterMs: retryAfter(error.response?.headers, now),
    };
    const codes = entraCodes(description, error.cause);
    if (codes.some((c) => entraTransient.has(c)))
      return new ProviderError('transient', 'provider throttled the request', {
        ...details,
        throttled: status === 429 || codes.some((c) => entraThrottling.has(c)),
      });
    if (codes.some((c) => entraConfig.has(c)))
      return new ProviderError('config_error', 'provider rejected the client', details);
    if (codes.some((c) => entraReauth.has(c)))
      return new ProviderError('reauth_required', 'provider requires the user to sign in again', details);
    if (
      status >= 500 ||
      status === 429 ||
      providerError === 'temporarily_unavailable' ||
      providerError === 'server_error'
    ) {
      return new ProviderError('transient', `provider unavailable (HTTP ${status})`, {
        ...details,
        throttled: status === 429,
      });
    }
    switch (providerError) {
      case 'invalid_grant':
      case 'interaction_required':
      case 'consent_required':
      case 'login_required':
      case 'account_selection_required':
        return new ProviderError('reauth_required', `provider answered ${providerError}`, details);
      case 'invalid_client':
      case 'unauthorized_client':
      case 'unsupported_grant_type':
        return new ProviderError('config_error', `provider answered ${providerError}`, details);
      default:
        return new ProviderError('invalid_request', `provider answered ${providerError}`, details);
    }
  }
  if (error instanceof OutboundBlockedError || isOutboundBlocked(error)) {
    return new ProviderError('config_error', 'provider address refused by the outbound policy', {
      cause: error,
    });
  }
  if (error instanceof oauth.OperationProcessingError) {
    // The cause is the Response when the server answered something that is not an OAuth error
    // body (plain-text 503, HTML). Duck-typed: our fetch returns undici's own Response class.
    const cause = error.cause as { status?: unknown; headers?: { get?: unknown } } | undefined;
    const status = typeof cause?.status === 'number' ? cause.status : undefined;
    const headers = typeof cause?.headers?.get === 'function' ? (cause.headers as Headers) : undefined;
    if (status !== undefined && (status >= 500 || status === 429)) {
      return new ProviderError('transient', `provider unavailable (HTTP ${status})`, {
        status,
        cause: error,
        retryAfterMs: retryAfter(headers, now),
        throttled: status === 429,
      });
    }
    // A malformed answer (HTML, garbage JSON, no access_token) is the provider misbehaving: retry later.
    return new ProviderError(
      'transient',
      `provider answered something unusable (${error.code ?? 'unknown'})`,
      {
        ...(status === undefined ? {} : { status }),
        cause: error,
      },
    );
  }
  // Network errors, timeouts, DNS failures.
  return new ProviderError('transient', 'provider could not be reached', { cause: error });
}
