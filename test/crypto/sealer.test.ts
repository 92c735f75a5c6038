import { createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  DecryptionError,
  Keyring,
  type SealContext,
  Sealer,
  sealedKeyId,
} from '../../src/crypto/index.js';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');

const ctx: SealContext = {
  table: 'oauth_tokens',
  rowId: '0190f4c2-7b1e-7cc0-9f3a-3d2c1b0a9f8e',
  field: 'access_token',
};
const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl';

function sealerFor(activeKeyId: string, keys: Record<string, string>): Sealer {
  return new Sealer(
    Keyring.fromConfig({ activeKeyId, keys: Object.entries(keys).map(([id, key]) => ({ id, key })) }),
  );
}

/** Runs `fn`, asserts it threw a DecryptionError with `code`, and returns the error. */
function decryptionError(fn: () => unknown, code: DecryptionError['code']): DecryptionError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DecryptionError);
  expect(caught).toBeInstanceOf(CryptoError);
  expect((caught as DecryptionError).code).toBe(code);
  return caught as DecryptionError;
}

function payloadOf(sealed: string): Buffer {
  return Buffer.from(sealed.slice(sealed.lastIndexOf('.') + 1), 'base64url');
}

function withPayload(sealed: string, payload: Buffer): string {
  return `${sealed.slice(0, sealed.lastIndexOf('.') + 1)}${payload.toString('base64url')}`;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Seals `token` until the payload has a property a test needs (random nonces vary it). */
function sealWith(sealer: Sealer, accept: (payload: string) => boolean): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const sealed = sealer.seal(token, ctx);
    if (accept(sealed.slice(sealed.lastIndexOf('.') + 1))) return sealed;
  }
  throw new Error('no suitable sealed value in 1000 attempts');
}

/** A small deterministic PRNG (mulberry32), so a failing fuzz case can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('Sealer.seal / open', () => {
  const sealer = sealerFor('k1', { k1 });

  it.each([
    ['a JWT-like token', token],
    ['an empty string', ''],
    ['non-ASCII text', 'pässwörd ✓ 🔑 秘密'],
    ['a long value', 'x'.repeat(100_000)],
  ])('round-trips %s', (_label, plaintext) => {
    const sealed = sealer.seal(plaintext, ctx);
    expect(sealed).toMatch(/^v1\.k1\.[A-Za-z0-9_-]+$/);
    expect(payloadOf(sealed)).toHaveLength(12 + Buffer.byteLength(plaintext) + 16);
    expect(sealer.open(sealed, { ...ctx })).toBe(plaintext);
  });

  it('produces exactly v1.<keyId>.<base64url(nonce ‖ ciphertext ‖ tag)> with the documented AAD', () => {
    const sealed = sealer.seal(token, ctx);
    const [version, keyId, encoded] = sealed.split('.');
    expect([version, keyId]).toEqual(['v1', 'k1']);
    const payload = Buffer.from(encoded!, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(k1, 'base64'), payload.subarray(0, 12));
    decipher.setAAD(Buffer.from(`nunq-connect/v1|k1|${ctx.table}|${ctx.rowId}|${ctx.field}`, 'utf8'));
    decipher.setAuthTag(payload.subarray(payload.length - 16));
    const plaintext = Buffer.concat([
      decipher.update(payload.subarray(12, payload.length - 16)),
      decipher.final(),
    ]);
    expect(plaintext.toString('utf8')).toBe(token);
  });

  it.each([
    ['a non-ASCII row id', { ...ctx, rowId: 'ряд-42 ✓' }, { ...ctx, rowId: 'ряд-43 ✓' }],
    [
      'a row id too long for the AAD buffer',
      { ...ctx, rowId: 'r'.repeat(5000) },
      { ...ctx, rowId: `${'r'.repeat(4999)}s` },
    ],
    [
      'a long non-ASCII row id',
      { ...ctx, rowId: '秘'.repeat(400) },
      { ...ctx, rowId: `${'秘'.repeat(399)}密` },
    ],
  ])('binds %s into the AAD', (_label, where, elsewhere) => {
    const sealed = sealer.seal(token, where);
    expect(sealer.open(sealed, { ...where })).toBe(token);
    decryptionError(() => sealer.open(sealed, elsewhere), 'decrypt_failed');
  });

  it('keeps values independent when opens of different sizes and keys interleave', () => {
    const both = sealerFor('k2', { k1, k2 });
    const cases = [
      { text: token, where: ctx, sealed: sealer.seal(token, ctx) },
      {
        text: 'y'.repeat(40_000),
        where: { ...ctx, rowId: 'big' },
        sealed: both.seal('y'.repeat(40_000), { ...ctx, rowId: 'big' }),
      },
      {
        text: 'short',
        where: { ...ctx, field: 'refresh_token' },
        sealed: both.seal('short', { ...ctx, field: 'refresh_token' }),
      },
      { text: 'z'.repeat(3000), where: ctx, sealed: sealer.seal('z'.repeat(3000), ctx) },
    ];
    for (let round = 0; round < 3; round++) {
      for (const c of cases) expect(both.open(c.sealed, c.where)).toBe(c.text);
    }
  });

  it('does not contain the plaintext in the sealed string', () => {
    const sealed = sealer.seal(token, ctx);
    expect(sealed).not.toContain(token.slice(0, 12));
    expect(payloadOf(sealed).includes(Buffer.from(token.slice(0, 12)))).toBe(false);
  });

  it('uses a fresh nonce for every seal, across refills of the nonce pool (256 a fill)', () => {
    const seals = Array.from({ length: 600 }, () => sealer.seal(token, ctx));
    expect(new Set(seals).size).toBe(600);
    const nonces = seals.map((s) => payloadOf(s).subarray(0, 12).toString('hex'));
    expect(new Set(nonces).size).toBe(600);
    // A nonce is its own copy: sealing more never changes one already handed out.
    expect(payloadOf(seals[0]!).subarray(0, 12).toString('hex')).toBe(nonces[0]);
    for (const s of seals) expect(sealer.open(s, ctx)).toBe(token);
  });

  it('fails to open when any single bit of nonce, ciphertext or tag is flipped', () => {
    const sealed = sealer.seal('refresh-token-0123456789', ctx);
    const payload = payloadOf(sealed);
    let checked = 0;
    for (let byte = 0; byte < payload.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(payload);
        tampered[byte]! ^= 1 << bit;
        const error = decryptionError(
          () => sealer.open(withPayload(sealed, tampered), ctx),
          'decrypt_failed',
        );
        expect(error.keyId).toBe('k1');
        checked++;
      }
    }
    expect(checked).toBe((12 + 24 + 16) * 8);
    expect(sealer.open(sealed, ctx)).toBe('refresh-token-0123456789'); // the original still opens
  });

  it.each([
    ['another row', { ...ctx, rowId: '0190f4c2-7b1e-7cc0-9f3a-3d2c1b0a9f8f' }],
    ['another field', { ...ctx, field: 'refresh_token' }],
    ['another table', { ...ctx, table: 'pending_authorizations' }],
  ])('fails to open a value moved to %s', (_label, moved) => {
    const sealed = sealer.seal(token, ctx);
    const error = decryptionError(() => sealer.open(sealed, moved), 'decrypt_failed');
    expect(error.context).toEqual(moved);
  });

  it('fails to open a value relabelled with another existing key id', () => {
    const both = sealerFor('k1', { k1, k2 });
    const sealed = both.seal(token, ctx);
    decryptionError(() => both.open(sealed.replace(/^v1\.k1\./, 'v1.k2.'), ctx), 'decrypt_failed');
  });

  it('binds the key id itself: relabelling fails even when both ids hold the same key bytes', () => {
    const twins = sealerFor('k1', { k1, k1copy: k1 });
    const sealed = twins.seal(token, ctx);
    const relabelled = sealed.replace(/^v1\.k1\./, 'v1.k1copy.');
    expect(relabelled).not.toBe(sealed);
    const error = decryptionError(() => twins.open(relabelled, ctx), 'decrypt_failed');
    expect(error.keyId).toBe('k1copy');
  });

  it('fails to open with the wrong key under the same id', () => {
    const sealed = sealer.seal(token, ctx);
    decryptionError(() => sealerFor('k1', { k1: k2 }).open(sealed, ctx), 'decrypt_failed');
  });

  it('reports key_unknown for a key id the keyring does not hold', () => {
    const sealed = sealerFor('k2', { k2 }).seal(token, ctx);
    const error = decryptionError(() => sealer.open(sealed, ctx), 'key_unknown');
    expect(error.keyId).toBe('k2');
    expect(error.message).toContain('"k2"');
  });

  const valid = sealerFor('k1', { k1 }).seal(token, ctx);
  const validPayload = valid.slice('v1.k1.'.length);
  it.each([
    ['an empty string', ''],
    ['another version', `v2.k1.${validPayload}`],
    ['no version', `k1.${validPayload}`],
    ['a missing payload part', 'v1.k1'],
    ['an empty key id', `v1..${validPayload}`],
    ['a key id outside the pattern', `v1.k/1.${validPayload}`],
    ['an empty payload', 'v1.k1.'],
    ['a fourth part', `${valid}.AAAA`],
    ['bad base64', `v1.k1.${'!'.repeat(40)}`],
    ['base64 padding', `v1.k1.${validPayload}${'='.repeat((4 - (validPayload.length % 4)) % 4 || 4)}`],
    ['an invalid character inside', `v1.k1.${validPayload.slice(0, 10)}*${validPayload.slice(11)}`],
    ['whitespace inside', `v1.k1.${validPayload.slice(0, 10)} ${validPayload.slice(11)}`],
    [
      'a payload length no base64 can have',
      `v1.k1.${validPayload}${'A'.repeat((5 - (validPayload.length % 4)) % 4 || 4)}`,
    ],
    ['a payload too short for nonce and tag', `v1.k1.${randomBytes(27).toString('base64url')}`],
  ])('rejects %s as malformed', (_label, sealed) => {
    const error = decryptionError(() => sealer.open(sealed, ctx), 'malformed');
    expect(error.context).toEqual(ctx);
    decryptionError(() => sealedKeyId(sealed), 'malformed');
  });

  describe('rejects encodings that Node would decode to the very same bytes', () => {
    // Each variant passes Node's lenient decoder unchanged, so only our strict parsing can catch it.
    const sealed = sealWith(sealer, (p) => /[-_]/.test(p) && p.length % 4 !== 0); // a last char with unused bits
    const payload = sealed.slice('v1.k1.'.length);
    const last = ALPHABET.indexOf(payload.at(-1)!);
    const i = payload.search(/[A-Za-z]/);
    it.each([
      ['the standard alphabet', payload.replaceAll('-', '+').replaceAll('_', '/')],
      ['stray bits in the last character', `${payload.slice(0, -1)}${ALPHABET[last | 1]}`],
      [
        'a non-ASCII character whose low byte is valid',
        `${payload.slice(0, i)}${String.fromCharCode(0x4e00 | payload.charCodeAt(i))}${payload.slice(i + 1)}`,
      ],
    ])('%s', (_label, variant) => {
      expect(variant).not.toBe(payload);
      expect(Buffer.from(variant, 'base64url').equals(Buffer.from(payload, 'base64url'))).toBe(true);
      decryptionError(() => sealer.open(`v1.k1.${variant}`, ctx), 'malformed');
      expect(sealer.open(sealed, ctx)).toBe(token);
    });
  });

  it('accepts exactly the canonical encodings under random single-character edits', () => {
    const random = seeded(42);
    const chars = 'Aa0-_+/=.!* \n\u00e9\u4e2d\u0141\u012d\ud83d~';
    let accepted = 0;
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const pos = 6 + Math.floor(random() * (valid.length - 6));
      const char = chars[Math.floor(random() * chars.length)]!;
      const edit = Math.floor(random() * 3);
      const mutated =
        edit === 0
          ? `${valid.slice(0, pos)}${char}${valid.slice(pos + 1)}`
          : edit === 1
            ? `${valid.slice(0, pos)}${char}${valid.slice(pos)}`
            : `${valid.slice(0, pos)}${valid.slice(pos + 1)}`;
      const payload = mutated.slice(6);
      const bytes = Buffer.from(payload, 'base64url');
      const canonical =
        [...payload].every((c) => c.charCodeAt(0) < 0x80) &&
        bytes.length >= 28 &&
        bytes.toString('base64url') === payload;
      let keyId: string | undefined;
      try {
        keyId = sealedKeyId(mutated);
      } catch (error) {
        expect((error as DecryptionError).code).toBe('malformed');
      }
      expect(keyId !== undefined).toBe(canonical);
      if (canonical) accepted++;
      else rejected++;
      // Whatever the edit, open never returns anything but the original plaintext, and only for the original.
      let opened: string | undefined;
      try {
        opened = sealer.open(mutated, ctx);
      } catch (error) {
        expect(error).toBeInstanceOf(DecryptionError);
      }
      if (opened !== undefined) {
        expect(mutated).toBe(valid);
        expect(opened).toBe(token);
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('accepts the shortest well-formed value (empty plaintext) at the boundary', () => {
    const sealed = sealer.seal('', ctx);
    expect(payloadOf(sealed)).toHaveLength(28);
    expect(sealer.open(sealed, ctx)).toBe('');
  });

  it('keeps sealed bytes and plaintext out of error messages', () => {
    const sealed = sealer.seal(token, ctx);
    const payload = payloadOf(sealed);
    payload[20]! ^= 1;
    const tampered = withPayload(sealed, payload);
    const failures = [
      decryptionError(() => sealer.open(tampered, ctx), 'decrypt_failed'),
      decryptionError(() => sealerFor('k1', { k1: k2 }).open(sealed, ctx), 'decrypt_failed'),
      decryptionError(() => sealer.open(`${tampered}*`, ctx), 'malformed'),
    ];
    for (const error of failures) {
      const shown = `${error.message} ${JSON.stringify(error)}`;
      expect(shown).not.toContain(sealed.slice(6, 30));
      expect(shown).not.toContain(tampered.slice(6, 30));
      expect(shown).not.toContain(token.slice(0, 12));
      expect(shown).toContain('oauth_tokens');
    }
  });

  it('cannot be reinterpreted by shifting the AAD separator between rowId and field', () => {
    const sealed = sealer.seal(token, { table: 'oauth_tokens', rowId: 'row|access', field: 'token' });
    // Same AAD bytes if field could contain '|': 'oauth_tokens|row|access|token'.
    expect(() => sealer.open(sealed, { table: 'oauth_tokens', rowId: 'row', field: 'access|token' })).toThrow(
      TypeError,
    );
    expect(sealer.open(sealed, { table: 'oauth_tokens', rowId: 'row|access', field: 'token' })).toBe(token);
  });

  it('refuses a table or field containing the AAD separator', () => {
    expect(() => sealer.seal(token, { ...ctx, table: 'a|b' })).toThrow(TypeError);
    expect(() => sealer.seal(token, { ...ctx, field: 'a|b' })).toThrow(TypeError);
    expect(() => sealer.open(valid, { ...ctx, field: 'access_token|' })).toThrow(TypeError);
  });
});

describe('key rotation', () => {
  const before = sealerFor('k1', { k1 });
  const after = sealerFor('k2', { k2, k1 });

  it('opens a value sealed under a retired key while the keyring still holds it', () => {
    const old = before.seal(token, ctx);
    expect(sealedKeyId(old)).toBe('k1');
    expect(after.open(old, ctx)).toBe(token);
  });

  it('flags values under a non-active key for rotation, and not once re-sealed', () => {
    const old = before.seal(token, ctx);
    expect(before.needsRotation(old)).toBe(false);
    expect(after.needsRotation(old)).toBe(true);
    const resealed = after.seal(after.open(old, ctx), ctx);
    expect(sealedKeyId(resealed)).toBe('k2');
    expect(after.needsRotation(resealed)).toBe(false);
    expect(after.open(resealed, ctx)).toBe(token);
    // The re-sealed value really is under k2: the old keyring cannot open it.
    decryptionError(() => before.open(resealed, ctx), 'key_unknown');
  });

  it('throws malformed from needsRotation for a value it cannot parse', () => {
    decryptionError(() => after.needsRotation('v1.k1'), 'malformed');
  });
});
