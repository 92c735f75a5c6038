/** Stable problem codes the HTTP API answers with (RFC 9457 `code` extension member). */
export const problemCodes = [
  'bad_request',
  'validation_failed',
  'unauthenticated',
  'hand_off_used',
  'forbidden',
  'csrf_failed',
  'not_found',
  'method_not_allowed',
  'not_implemented',
  'request_timeout',
  'header_fields_too_large',
  'expectation_failed',
  'conflict',
  'read_only',
  'already_exists',
  'in_use',
  'confirm_required',
  'edit_conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'integration_not_found',
  'integration_disabled',
  'connection_not_found',
  'connection_needs_reauth',
  'return_to_invalid',
  'authorization_failed',
  'provider_unavailable',
  'provider_misconfigured',
  'mcp_discovery_failed',
  'upstream_error',
  'internal_error',
  'service_unavailable',
] as const;

export type ProblemCode = (typeof problemCodes)[number];

export interface ProblemField {
  path: string;
  message: string;
}

/**
 * An error meant for the client. Its `detail` is public text written by us; nothing from an
 * upstream body, a token or a stack trace ever goes in it. @see RFC 9457
 */
export class Problem extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly title: string;
  readonly detail: string | undefined;
  readonly extra: Record<string, unknown>;
  /** Response headers that go with this answer (a 429's `RateLimit-*`, a 405's `Allow`). */
  readonly headers: Record<string, string> = {};

  constructor(
    status: number,
    code: ProblemCode,
    title: string,
    detail?: string,
    extra: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.extra = extra;
  }

  /** The RFC 9457 body. */
  toBody(instance?: string): Record<string, unknown> {
    return {
      type: `https://nunq.dev/problems/${this.code.replaceAll('_', '-')}`,
      title: this.title,
      status: this.status,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      code: this.code,
      ...(instance === undefined ? {} : { instance }),
      ...this.extra,
    };
  }
}

export const notFound = (detail = 'Not found.'): Problem =>
  new Problem(404, 'not_found', 'Not Found', detail);
/** Missing, or another user's: the two are indistinguishable by design. */
export const connectionNotFound = (): Problem =>
  new Problem(404, 'connection_not_found', 'Not Found', 'There is no such connection.');
export const unauthenticated = (detail = 'Sign in first.'): Problem =>
  new Problem(401, 'unauthenticated', 'Unauthorized', detail);
export const forbidden = (detail = 'You may not do this.'): Problem =>
  new Problem(403, 'forbidden', 'Forbidden', detail);
