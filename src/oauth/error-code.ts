/**
 * An OAuth `error` code as RFC 6749 allows it (§4.1.2.1, Appendix A.7: `%x20-21 / %x23-5B /
 * %x5D-7E`), without spaces and at most 64 characters: what a real code looks like.
 */
const errorCodePattern = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

/** What is recorded in place of an `error` that is no valid error code. */
export const invalidErrorCode = 'invalid_error_code';

/**
 * The provider's (or a crafted callback's) `error` fit to store and show: itself when it is a
 * valid error code, else `invalid_error_code`, so no markup, CRLF, NUL or megabyte lands in the
 * audit log.
 */
export function safeErrorCode(value: string): string {
  return errorCodePattern.test(value) ? value : invalidErrorCode;
}
