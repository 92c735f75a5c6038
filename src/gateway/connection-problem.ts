import {
  ConnectionNeedsReauthError,
  ConnectionNotFoundError,
  ProviderMisconfiguredError,
  ProviderUnavailableError,
} from '../connections/errors.js';
import { connectionNotFound, Problem } from '../http/problem.js';
import type { ConnectionRow } from '../store/types.js';

/**
 * Maps the token service's failures to what a consumer can act on: reconnect (with the URL to
 * do it), retry later (with Retry-After), or wait for an administrator. Never a hang, never a token.
 */
export function connectionProblem(error: unknown, row: ConnectionRow, publicUrl: string): Problem {
  if (error instanceof ConnectionNeedsReauthError) {
    return new Problem(
      409,
      'connection_needs_reauth',
      'Conflict',
      'This connection must be reconnected by its owner.',
      {
        connectionId: row.id,
        integration: row.integration_id,
        reason: error.reason,
        reconnectUrl: `${publicUrl}/connect/${row.integration_id}`,
        reconnectApi: `${publicUrl}/api/v1/connections/${row.id}/reconnect`,
      },
    );
  }
  if (error instanceof ProviderUnavailableError) {
    return new Problem(
      503,
      'provider_unavailable',
      'Service Unavailable',
      'The provider is unavailable; try again shortly.',
      {
        ...(error.retryAfterMs === undefined
          ? {}
          : { retryAfterSeconds: Math.ceil(error.retryAfterMs / 1000) }),
      },
    );
  }
  if (error instanceof ProviderMisconfiguredError) {
    return new Problem(
      502,
      'provider_misconfigured',
      'Bad Gateway',
      'The provider rejects this service; an administrator has been told.',
    );
  }
  if (error instanceof ConnectionNotFoundError) {
    return connectionNotFound();
  }
  throw error;
}
