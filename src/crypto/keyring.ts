import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { KeyringError } from './errors.js';

/** Length in bytes of every encryption key: AES-256. */
export const KEY_LENGTH = 32;

/** Key ids appear inside sealed values (`v1.<keyId>.…`), so they may not contain dots. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** The keyring as it appears in configuration: the id to seal with, and every key that may open. */
export interface KeyringConfig {
  activeKeyId: string;
  keys: ReadonlyArray<{ id: string; key: string }>;
}

const STANDARD_BASE64 = /^[A-Za-z0-9+/]*$/;
const URL_BASE64 = /^[A-Za-z0-9_-]*$/;

/**
 * The encryption keys of the service, by id: one active key that seals, older keys that still
 * open until rotation has re-sealed everything. Immutable; key bytes live only in `KeyObject`s
 * in private fields and never appear in `toJSON`, `inspect` or error messages.
 */
export class Keyring {
  readonly #activeKeyId: string;
  readonly #keys: ReadonlyMap<string, KeyObject>;

  private constructor(activeKeyId: string, keys: ReadonlyMap<string, KeyObject>) {
    this.#activeKeyId = activeKeyId;
    this.#keys = keys;
  }

  /**
   * Validates and loads the configured keys: each id must match {@link KEY_ID_PATTERN} and be
   * unique, each key must be base64 (or base64url) of exactly 32 bytes, and the active id must
   * be among them. Fails fast with a {@link KeyringError} naming the offending key id.
   */
  static fromConfig(config: KeyringConfig): Keyring {
    const keys = new Map<string, KeyObject>();
    config.keys.forEach((entry, index) => {
      const { id } = entry;
      if (typeof id !== 'string' || !KEY_ID_PATTERN.test(id)) {
        // Do not echo the id: a mistyped config might have put key material in this field.
        throw new KeyringError(
          'key_invalid',
          `encryption key id at index ${index} must match ${KEY_ID_PATTERN}`,
        );
      }
      if (keys.has(id)) {
        throw new KeyringError('key_invalid', `encryption key id "${id}" is listed more than once`);
      }
      const bytes = decodeKey(id, entry.key);
      keys.set(id, createSecretKey(bytes)); // copies the bytes into the KeyObject
      bytes.fill(0);
    });
    const active = config.activeKeyId;
    if (!keys.has(active)) {
      const named =
        typeof active === 'string' && KEY_ID_PATTERN.test(active) ? `"${active}"` : '(invalid id)';
      throw new KeyringError(
        'active_key_missing',
        `active encryption key ${named} is not among the configured keys (${[...keys.keys()].join(', ') || 'none'})`,
      );
    }
    return new Keyring(active, keys);
  }

  /** The id of the key new values are sealed with. */
  get activeKeyId(): string {
    return this.#activeKeyId;
  }

  /** Whether a key with this id is loaded (so values sealed under it can be opened). */
  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** All key ids, in configuration order. */
  ids(): string[] {
    return [...this.#keys.keys()];
  }

  /** The key with this id; throws a {@link KeyringError} `key_unknown` if there is none. */
  keyFor(id: string): KeyObject {
    const key = this.#keys.get(id);
    if (!key) throw new KeyringError('key_unknown', `no encryption key with id "${id}" in the keyring`);
    return key;
  }

  /** Ids only, the active one starred: `[Keyring: k2*, k1]`. */
  toJSON(): string {
    const ids = this.ids().map((id) => (id === this.#activeKeyId ? `${id}*` : id));
    return `[Keyring: ${ids.join(', ')}]`;
  }

  /** `util.inspect` (and so `console.log`) shows the same redacted text as `toJSON`. */
  [inspect.custom](): string {
    return this.toJSON();
  }
}

/** A fresh random key in the configuration format: base64 of 32 bytes from the system CSPRNG. */
export function generateKey(): string {
  return randomBytes(KEY_LENGTH).toString('base64');
}

/** Strict base64/base64url decoding (Node's decoder silently skips bad characters). */
function decodeKey(id: string, encoded: unknown): Buffer {
  const invalid = () =>
    new KeyringError(
      'key_invalid',
      `encryption key "${id}" must be base64 of exactly ${KEY_LENGTH} bytes (not valid base64)`,
    );
  if (typeof encoded !== 'string') throw invalid();
  const body = encoded.replace(/={1,2}$/, '');
  const padded = body.length !== encoded.length;
  if (!(STANDARD_BASE64.test(body) || URL_BASE64.test(body))) throw invalid();
  if (body.length % 4 === 1 || (padded && encoded.length % 4 !== 0)) throw invalid();
  const bytes = Buffer.from(body, 'base64');
  // Reject non-canonical encodings (stray bits in the last character) as well.
  if (bytes.toString('base64url') !== body.replaceAll('+', '-').replaceAll('/', '_')) throw invalid();
  if (bytes.length !== KEY_LENGTH) {
    bytes.fill(0);
    throw new KeyringError(
      'key_invalid',
      `encryption key "${id}" must be base64 of exactly ${KEY_LENGTH} bytes (got ${bytes.length})`,
    );
  }
  return bytes;
}
