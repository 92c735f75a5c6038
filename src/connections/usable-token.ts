import { inspect } from 'node:util';

/** An access token ready to use. The value is private; logging or serialising it prints `[redacted]`. */
export class UsableToken {
  readonly #value: string;
  constructor(
    value: string,
    readonly tokenType: string,
    readonly expiresAt: number | null,
    readonly connectionId: string,
  ) {
    this.#value = value;
  }
  get value(): string {
    return this.#value;
  }
  /** The `Authorization` header value (always `Bearer`, the only type we send). */
  get authorization(): string {
    return `Bearer ${this.#value}`;
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[UsableToken redacted]';
  }
}
