import type { FastifyBaseLogger, FastifyError } from 'fastify';
import { Problem } from './problem.js';

/** Only our own Problems reach clients as they are; framework errors are mapped, others hidden. */
export function toProblem(error: FastifyError | Problem | Error, bodyLimit: number): Problem {
  if (error instanceof Problem) return error;
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new Problem(
      413,
      'payload_too_large',
      'Content Too Large',
      `The request body is larger than the limit of ${bodyLimit} bytes.`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new Problem(415, 'unsupported_media_type', 'Unsupported Media Type', 'Send application/json.');
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return new Problem(400, 'bad_request', 'Bad Request', 'The request body is empty or malformed.');
  }
  if ((error as FastifyError).statusCode === 400 || error instanceof SyntaxError) {
    return new Problem(400, 'bad_request', 'Bad Request', 'The request body is not valid JSON.');
  }
  return new Problem(500, 'internal_error', 'Internal Server Error', 'Something went wrong on our side.');
}

/**
 * The line an error answer leaves: the error itself (stack and all, through the redacting
 * logger) when it was not one of ours and became a 500, else the problem's code and status.
 */
export function logProblem(log: FastifyBaseLogger, error: unknown, problem: Problem): void {
  if (problem.status >= 500 && !(error instanceof Problem)) log.error({ err: error }, 'request failed');
  else if (problem.status >= 500)
    log.warn({ problem: problem.code, status: problem.status }, 'request failed');
  else log.info({ problem: problem.code, status: problem.status }, 'request refused');
}

/** The headers an error answer carries besides our security headers: its own, and `Retry-After`. */
export function problemHeaders(problem: Problem): Record<string, string> {
  const retryAfter = problem.extra.retryAfterSeconds;
  return typeof retryAfter === 'number'
    ? { ...problem.headers, 'retry-after': String(retryAfter) }
    : problem.headers;
}
