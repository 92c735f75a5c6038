import type { SealContext } from './sealer.js';

/** Stable codes for every crypto failure; callers branch on these, never on message text. */
export type CryptoErrorCode =
  | 'key_invalid'
  | 'key_unknown'
  | 'active_key_missing'
  | 'decrypt_failed'
  | 'malformed';

/** Codes a {@link KeyringError} can carry: problems with the configured keys. */
export type KeyringErrorCode = Extract<CryptoErrorCode, 'key_invalid' | 'key_unknown' | 'active_key_missing'>;

/** Codes a {@link DecryptionError} can carry: why a sealed value could not be opened. */
export type DecryptionErrorCode = Extract<CryptoErrorCode, 'key_unknown' | 'decrypt_failed' | 'malformed'>;

/**
 * Base class of all crypto failures. Messages name key ids and sealing contexts only,
 * never key material, plaintext or ciphertext, so they are safe to log.
 */
export class CryptoError extends Error {
  override readonly name: string = 'CryptoError';
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A key could not be loaded or looked up (bad config, unknown id, missing active key). */
export class KeyringError extends CryptoError {
  override readonly name = 'KeyringError';
  declare readonly code: KeyringErrorCode;

  constructor(code: KeyringErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * A sealed value could not be opened. Carries the key id (when the value was well-formed enough
 * to name one) and the context it was opened for, so an operator can find the row; it never
 * carries the sealed string or any plaintext.
 */
export class DecryptionError extends CryptoError {
  override readonly name = 'DecryptionError';
  declare readonly code: DecryptionErrorCode;
  readonly keyId: string | undefined;
  /** The row the value was opened for; undefined when only the format was inspected. */
  readonly context: Readonly<SealContext> | undefined;

  constructor(
    code: DecryptionErrorCode,
    message: string,
    details: { keyId?: string | undefined; context?: SealContext | undefined } = {},
  ) {
    super(code, message);
    this.keyId = details.keyId;
    this.context =
      details.context &&
      Object.freeze({
        table: details.context.table,
        rowId: details.context.rowId,
        field: details.context.field,
      });
  }
}
