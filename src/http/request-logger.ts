import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, Logger } from 'pino';

type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Fastify makes a child logger (`{ reqId }`) for every request; with our redaction paths pino
 * runs the binding through its wildcard redaction on creation, which cost ~7% of a proxied
 * request's CPU. Most requests never log through it (the access line has its own logger), so
 * the child is made on the first line that is actually written, and a call below the level
 * makes nothing. Lines are the same as with an eager child.
 */
class RequestLogger implements FastifyBaseLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): LevelWithSilentOrString {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.#real().level = level;
  }

  #real(): Logger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }

  #write(method: Method, args: unknown[]): void {
    if (
      this.#child === undefined &&
      this.#options.level === undefined &&
      !this.#parent.isLevelEnabled(method)
    )
      return;
    (this.#real()[method] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('fatal', args);
  }
  error(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('error', args);
  }
  warn(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('warn', args);
  }
  info(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('info', args);
  }
  debug(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('debug', args);
  }
  trace(...args: [obj: unknown, msg?: string, ...rest: unknown[]]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return (
      this.#child?.isLevelEnabled(level) ??
      (this.#options.level === undefined
        ? this.#parent.isLevelEnabled(level)
        : this.#real().isLevelEnabled(level))
    );
  }

  bindings(): Bindings {
    return this.#real().bindings();
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options) as FastifyBaseLogger;
  }
}

/** Fastify's `childLoggerFactory`: request loggers that cost nothing until they write. */
export function lazyRequestLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new RequestLogger(logger as unknown as Logger, bindings, options);
}
