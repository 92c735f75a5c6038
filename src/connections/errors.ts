/** The connection's grant is gone; the user must Reconnect. Carries no secret. */
export class ConnectionNeedsReauthError extends Error {
  readonly code = 'connection_needs_reauth';
  constructor(
    readonly connectionId: string,
    readonly integrationId: string,
    readonly reason: string,
  ) {
    super(`connection ${connectionId} needs reauthorization (${reason})`);
  }
}

/** The provider is unavailable and the stored access token has expired; retry later. */
export class ProviderUnavailableError extends Error {
  readonly code = 'provider_unavailable';
  constructor(
    readonly connectionId: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`provider unavailable for connection ${connectionId}`);
  }
}

/** The provider rejects our client (bad secret, unknown app): an administrator must act. */
export class ProviderMisconfiguredError extends Error {
  readonly code = 'provider_misconfigured';
  constructor(readonly connectionId: string) {
    super(`provider misconfigured for connection ${connectionId}`);
  }
}

export class ConnectionNotFoundError extends Error {
  readonly code = 'connection_not_found';
}

/** An administrator disabled the connection's integration (or its provider): kept, but unusable until re-enabled. */
export class IntegrationDisabledError extends Error {
  readonly code = 'integration_disabled';
  constructor(readonly integrationId: string) {
    super(`integration ${integrationId} is disabled by an administrator`);
  }
}
