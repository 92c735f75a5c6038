/** An error's message and its cause's, for a report line (driver messages carry no secrets; URLs are redacted). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const message = error.message || (error instanceof AggregateError ? String(error.errors[0]) : 'error');
  const causeText = cause === undefined ? '' : `: ${describeError(cause)}`;
  const codeText =
    typeof code === 'string' && !message.includes(code) && /^[A-Z_]+$/.test(code) ? ` (${code})` : '';
  return `${message}${codeText}${causeText}`;
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
