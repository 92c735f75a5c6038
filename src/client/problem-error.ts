import type { ProblemCode } from '../http/problem.js';

/** The problem+json fields the service answers errors with (RFC 9457, plus our `code`). */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: ProblemCode;
  instance?: string;
  /** `validation_failed`: each wrong field and what is wrong with it. */
  errors?: Array<{ path: string; message: string }>;
  [extension: string]: unknown;
}

/**
 * A refusal or failure of the service, carrying its problem+json fields; branch on `code`.
 * An answer that is not problem+json (a proxy in between, a network failure) has code
 * `unexpected_response` and the HTTP status (0 when there was no answer).
 */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  readonly status: number;
  readonly code: ProblemCode | 'unexpected_response';
  readonly title: string;
  readonly detail: string | undefined;
  readonly type: string;
  readonly instance: string | undefined;
  readonly errors: Array<{ path: string; message: string }> | undefined;
  /** The whole problem body (extension members included), when there was one. */
  readonly problem: ProblemDetails | undefined;

  constructor(status: number, problem: ProblemDetails | undefined, fallbackTitle = 'Unexpected response') {
    super(problem?.detail ?? problem?.title ?? `${fallbackTitle} (HTTP ${status})`);
    this.status = status;
    this.problem = problem;
    this.code = problem?.code ?? 'unexpected_response';
    this.title = problem?.title ?? fallbackTitle;
    this.detail = problem?.detail;
    this.type = problem?.type ?? 'about:blank';
    this.instance = problem?.instance;
    this.errors = problem?.errors;
  }
}

/** Why `connect()` gave up without an outcome. */
export type PopupFailure = 'blocked' | 'closed' | 'no_window';

/** `connect()` could not finish: the popup was blocked, closed before the end, or there is no window. */
export class PopupError extends Error {
  override readonly name = 'PopupError';
  readonly reason: PopupFailure;

  constructor(reason: PopupFailure) {
    super(
      reason === 'blocked'
        ? 'The browser blocked the popup; call connect() from a click handler.'
        : reason === 'closed'
          ? 'The popup was closed before the connection finished.'
          : 'connect() needs a browser window.',
    );
    this.reason = reason;
  }
}
