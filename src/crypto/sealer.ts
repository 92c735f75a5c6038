import { createCipheriv, createDecipheriv, type KeyObject, randomFillSync } from 'node:crypto';
import { DecryptionError } from './errors.js';
import { KEY_ID_PATTERN, type Keyring } from './keyring.js';

/**
 * Where a sealed value lives. It is bound into the ciphertext as additional authenticated data,
 * so a value copied to another table, row or field does not open. `table` and `field` must not
 * contain `|` (they are code constants); with that, the AAD encoding is unambiguous.
 */
export interface SealContext {
  table: string;
  rowId: string;
  field: string;
}

const ALGORITHM = 'aes-256-gcm';
/** 96-bit nonces (the recommended IV length), drawn at random per seal. @see NIST SP 800-38D §5.2.1.1, §8.2.2 */
const NONCE_LENGTH = 12;
/** Full 128-bit tags; shorter ones weaken forgery resistance. @see NIST SP 800-38D §5.2.1.2 */
const TAG_LENGTH = 16;
const CIPHER_OPTIONS = { authTagLength: TAG_LENGTH } as const;
const VERSION_PREFIX = 'v1.';

/**
 * Random bytes for 256 nonces, drawn from the CSPRNG at once and handed out 12 bytes at a time,
 * each slice once: one `randomBytes(12)` call cost about 6 µs here, a slice of the pool 0.3 µs
 * (Node's `randomUUID` keeps such a pool too). A nonce is public (it leads the ciphertext).
 */
const noncePool = Buffer.alloc(NONCE_LENGTH * 256);
let noncePoolOffset = noncePool.length;

/** A fresh random 96-bit nonce, never handed out before. */
function nextNonce(): Buffer {
  if (noncePoolOffset === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolOffset = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(noncePoolOffset, noncePoolOffset + NONCE_LENGTH));
  noncePoolOffset += NONCE_LENGTH;
  return nonce;
}

/**
 * Sizes of the reusable buffers a Sealer decodes payloads and assembles AAD in, so the hot path
 * does not allocate. They hold only ciphertext and AAD, never plaintext, and every node:crypto
 * call that reads them (createDecipheriv, setAAD, setAuthTag, update) consumes the bytes
 * synchronously. Larger values fall back to a one-off buffer.
 */
const DECODE_SCRATCH_BYTES = 16 * 1024;
const AAD_SCRATCH_BYTES = 1024;
const UTF8 = new TextEncoder();

/**
 * A reusable byte buffer. Views on it are plain Uint8Arrays over a cached ArrayBuffer and offset:
 * `Buffer#subarray` and the `.buffer` getter are measurably slow on this hot path.
 */
class Scratch {
  readonly bytes: Buffer;
  readonly #arrayBuffer: ArrayBufferLike;
  readonly #offset: number;

  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
    this.#arrayBuffer = this.bytes.buffer;
    this.#offset = this.bytes.byteOffset;
  }

  view(start: number, end: number): Uint8Array {
    return new Uint8Array(this.#arrayBuffer, this.#offset + start, end - start);
  }
}

/** A key with the per-key parts of the format precomputed, so seal/open only append the context. */
interface SealingKey {
  readonly id: string;
  readonly key: KeyObject;
  /** `v1.<keyId>.` */
  readonly sealedPrefix: string;
  /** `nunq-connect/v1|<keyId>|` */
  readonly aadPrefix: string;
  /** Starts with the bytes of `aadPrefix`; the context is written after them. */
  readonly aad: Scratch;
  /** The part of `aad` after the prefix. */
  readonly aadTail: Uint8Array;
}

/**
 * Seals secrets for storage and opens them again: AES-256-GCM under the keyring's active key,
 * a fresh random nonce per value, and the key id and {@link SealContext} as AAD. The output is
 * `v1.<keyId>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The Sealer snapshots the keyring it is
 * given; build a new one when the keyring changes.
 * @see NIST SP 800-38D
 */
export class Sealer {
  readonly #active: SealingKey;
  readonly #keys: ReadonlyMap<string, SealingKey>;
  readonly #scratch = new Scratch(DECODE_SCRATCH_BYTES);
  readonly #scratchNonce = this.#scratch.view(0, NONCE_LENGTH);

  constructor(keyring: Keyring) {
    const keys = new Map<string, SealingKey>();
    for (const id of keyring.ids()) {
      const aadPrefix = `nunq-connect/v1|${id}|`;
      const aad = new Scratch(AAD_SCRATCH_BYTES);
      const aadTail = aad.view(aad.bytes.write(aadPrefix, 'utf8'), AAD_SCRATCH_BYTES);
      const sealedPrefix = `${VERSION_PREFIX}${id}.`;
      keys.set(id, { id, key: keyring.keyFor(id), sealedPrefix, aadPrefix, aad, aadTail });
    }
    this.#keys = keys;
    this.#active = keys.get(keyring.activeKeyId)!; // Keyring.fromConfig guarantees it exists
  }

  /**
   * Encrypts `plaintext` (as UTF-8) for the given table/row/field under the active key.
   * Every call draws a new random 96-bit nonce, so sealing the same value twice gives different
   * strings; with random nonces one key is good for 2^32 seals. @see NIST SP 800-38D §8.3
   */
  seal(plaintext: string, ctx: SealContext): string {
    const k = this.#active;
    const aad = additionalData(k, contextSuffix(ctx));
    const nonce = nextNonce();
    const cipher = createCipheriv(ALGORITHM, k.key, nonce, CIPHER_OPTIONS);
    cipher.setAAD(aad);
    const ciphertext = cipher.update(plaintext, 'utf8');
    const rest = cipher.final(); // empty for GCM, kept for correctness
    const payload = Buffer.concat([nonce, ciphertext, rest, cipher.getAuthTag()]);
    return k.sealedPrefix + payload.toString('base64url');
  }

  /**
   * Decrypts a value sealed for exactly this table/row/field. Throws a {@link DecryptionError}:
   * `malformed` if the string is not a well-formed v1 value, `key_unknown` if its key id is not in
   * the keyring, `decrypt_failed` if authentication fails (wrong key, tampering, moved value).
   * Never returns unauthenticated data. A `table` or `field` containing `|` is a programming
   * error (TypeError), as in {@link Sealer.seal}.
   */
  open(sealed: string, ctx: SealContext): string {
    // Read the context first: no caller code may run between filling the scratch buffers and using them.
    const suffix = contextSuffix(ctx);
    const keyId = parseKeyId(sealed, ctx);
    const k = keyId === this.#active.id ? this.#active : this.#keys.get(keyId);
    if (!k && !KEY_ID_PATTERN.test(keyId)) throw malformed(ctx, 'expected v1.<keyId>.<payload>');
    const length = decodedLength(sealed, keyId);
    const data = decodePayload(sealed, keyId, length, this.#scratch, ctx);
    if (!k) {
      throw new DecryptionError('key_unknown', `${describe(ctx)}: key "${keyId}" is not in the keyring`, {
        keyId,
        context: ctx,
      });
    }
    const end = length - TAG_LENGTH;
    const nonce = data === this.#scratch ? this.#scratchNonce : data.view(0, NONCE_LENGTH);
    const decipher = createDecipheriv(ALGORITHM, k.key, nonce, CIPHER_OPTIONS);
    decipher.setAAD(additionalData(k, suffix));
    decipher.setAuthTag(data.view(end, length));
    const plaintext = decipher.update(data.view(NONCE_LENGTH, end));
    try {
      decipher.final();
    } catch {
      plaintext.fill(0); // unauthenticated output: wipe it, never return it
      throw new DecryptionError(
        'decrypt_failed',
        `${describe(ctx)}: authentication failed under key "${keyId}" (wrong key, tampered value, or sealed for another row, field or table)`,
        { keyId, context: ctx },
      );
    }
    return plaintext.toString('utf8');
  }

  /** Whether a sealed value was sealed under a key other than the active one (rotation must re-seal it). */
  needsRotation(sealed: string): boolean {
    return sealedKeyId(sealed) !== this.#active.id;
  }
}

/**
 * The key id a sealed value names, after checking the whole string is well-formed (it does not
 * decrypt). Throws a {@link DecryptionError} `malformed` otherwise. Used by key rotation.
 */
export function sealedKeyId(sealed: string): string {
  const keyId = parseKeyId(sealed, undefined);
  if (!KEY_ID_PATTERN.test(keyId)) throw malformed(undefined, 'expected v1.<keyId>.<payload>');
  decodePayload(sealed, keyId, decodedLength(sealed, keyId), undefined, undefined);
  return keyId;
}

/** The text between `v1.` and the next dot; the caller checks it (known id or {@link KEY_ID_PATTERN}). */
function parseKeyId(sealed: string, context: SealContext | undefined): string {
  if (typeof sealed !== 'string' || !sealed.startsWith(VERSION_PREFIX)) {
    throw malformed(context, 'not a v1 sealed value');
  }
  const dot = sealed.indexOf('.', VERSION_PREFIX.length);
  return dot < 0 ? '' : sealed.slice(VERSION_PREFIX.length, dot);
}

/** How many bytes the base64url payload after `v1.<keyId>.` decodes to (if it is canonical). */
function decodedLength(sealed: string, keyId: string): number {
  const length = sealed.length - (VERSION_PREFIX.length + keyId.length + 1);
  const tail = length & 3;
  return (length >> 2) * 3 + (tail === 0 ? 0 : tail - 1);
}

/** Values of the base64url alphabet by ASCII code, -1 for anything else. */
const BASE64URL_VALUES = new Int8Array(128).fill(-1);
for (const [value, char] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
].entries()) {
  BASE64URL_VALUES[char.charCodeAt(0)] = value;
}

/**
 * Decodes the payload after `v1.<keyId>.` into the first `bytes` bytes of `scratch` (or of a new
 * buffer when it does not fit), accepting only canonical unpadded base64url of at least nonce +
 * tag. Node's decoder is lenient (it skips unknown characters, accepts `+`, `/` and `=`, and reads
 * only the low byte of non-ASCII characters), so each of those is ruled out here; a skipped
 * character always shows up as fewer bytes written than the length implies.
 */
function decodePayload(
  sealed: string,
  keyId: string,
  bytes: number,
  scratch: Scratch | undefined,
  context: SealContext | undefined,
): Scratch {
  const start = VERSION_PREFIX.length + keyId.length + 1;
  const tail = (sealed.length - start) & 3;
  let canonical = tail !== 1 && bytes >= NONCE_LENGTH + TAG_LENGTH;
  if (canonical && tail !== 0) {
    // The unused low bits of the last character must be zero.
    const last = sealed.charCodeAt(sealed.length - 1);
    const value = last < 128 ? BASE64URL_VALUES[last]! : -1;
    canonical = value >= 0 && (value & (tail === 2 ? 0x0f : 0x03)) === 0;
  }
  // Checked on the whole string (the prefix is ASCII without + or /): measuring a slice would copy it.
  canonical &&=
    !sealed.includes('+') && !sealed.includes('/') && Buffer.byteLength(sealed, 'utf8') === sealed.length;
  if (canonical) {
    const target = scratch && bytes <= scratch.bytes.length ? scratch : new Scratch(bytes);
    if (target.bytes.write(sealed.slice(start), 0, bytes, 'base64url') === bytes) return target;
  }
  throw malformed(context, 'payload is not base64url of nonce, ciphertext and tag', keyId);
}

// A plain function rather than a closure, so the success path allocates nothing for it.
function malformed(context: SealContext | undefined, reason: string, keyId?: string): DecryptionError {
  return new DecryptionError('malformed', `${describe(context)}: ${reason}`, { keyId, context });
}

/** `<table>|<rowId>|<field>`, after checking that table and field cannot shift the separators. */
function contextSuffix(ctx: SealContext): string {
  const { table, rowId, field } = ctx;
  if (table.includes('|') || field.includes('|')) {
    throw new TypeError(`seal context table and field must not contain "|" (${table}.${field})`);
  }
  return `${table}|${rowId}|${field}`;
}

/** `nunq-connect/v1|<keyId>|<table>|<rowId>|<field>` as UTF-8, in the key's scratch buffer when it fits. */
function additionalData(k: SealingKey, suffix: string): Uint8Array {
  const { read, written } = UTF8.encodeInto(suffix, k.aadTail);
  if (read !== suffix.length) return Buffer.from(k.aadPrefix + suffix, 'utf8'); // did not fit
  return k.aad.view(0, k.aadPrefix.length + written); // the prefix is ASCII: one byte per character
}

function describe(ctx: SealContext | undefined): string {
  return ctx ? `cannot open ${ctx.table}.${ctx.field} of row "${ctx.rowId}"` : 'sealed value is malformed';
}
