import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CryptoError, generateKey, Keyring, KeyringError } from '../../src/crypto/index.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The base64 of 32 bytes with one of the two unused low bits of the last character set: decodes to the same bytes. */
function nonCanonical(bytes: Buffer): string {
  const canonical = bytes.toString('base64'); // 43 characters + '='
  const last = ALPHABET.indexOf(canonical[42]!);
  const altered = `${canonical.slice(0, 42)}${ALPHABET[last | 1]}=`;
  expect(Buffer.from(altered, 'base64').equals(bytes)).toBe(true); // Node alone would accept it
  return altered;
}

function expectKeyringError(fn: () => unknown, code: KeyringError['code'], message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(KeyringError);
  expect(caught).toBeInstanceOf(CryptoError);
  expect((caught as KeyringError).code).toBe(code);
  expect((caught as KeyringError).message).toMatch(message);
}

describe('Keyring.fromConfig', () => {
  it('loads valid keys and exposes ids, the active id and the key objects', () => {
    const ring = Keyring.fromConfig({
      activeKeyId: 'k2',
      keys: [
        { id: 'k1', key: k1.toString('base64') },
        { id: 'k2', key: k2.toString('base64') },
      ],
    });
    expect(ring.activeKeyId).toBe('k2');
    expect(ring.ids()).toEqual(['k1', 'k2']);
    expect(ring.has('k1')).toBe(true);
    expect(ring.has('k3')).toBe(false);
    const key = ring.keyFor('k1');
    expect(key.type).toBe('secret');
    expect(key.symmetricKeySize).toBe(32);
    expect(key.export().equals(k1)).toBe(true);
    expect(ring.keyFor('k2').export().equals(k2)).toBe(true);
  });

  it('accepts base64url and unpadded base64 as well as padded standard base64', () => {
    // Pick a key whose standard encoding has both '+' and '/' so the alphabets really differ.
    let bytes = randomBytes(32);
    while (!/[+]/.test(bytes.toString('base64')) || !/[/]/.test(bytes.toString('base64')))
      bytes = randomBytes(32);
    for (const encoded of [
      bytes.toString('base64'),
      bytes.toString('base64').replace(/=+$/, ''),
      bytes.toString('base64url'),
    ]) {
      const ring = Keyring.fromConfig({ activeKeyId: 'a', keys: [{ id: 'a', key: encoded }] });
      expect(ring.keyFor('a').export().equals(bytes)).toBe(true);
    }
  });

  it('rejects a key of the wrong length, naming the key id and the length it got', () => {
    expectKeyringError(
      () =>
        Keyring.fromConfig({
          activeKeyId: 'k1',
          keys: [
            { id: 'k1', key: k1.toString('base64') },
            { id: 'short-key', key: randomBytes(16).toString('base64') },
          ],
        }),
      'key_invalid',
      /^encryption key "short-key" must be base64 of exactly 32 bytes \(got 16\)$/,
    );
    expectKeyringError(
      () =>
        Keyring.fromConfig({
          activeKeyId: 'k1',
          keys: [{ id: 'k1', key: randomBytes(33).toString('base64') }],
        }),
      'key_invalid',
      /"k1".*\(got 33\)/,
    );
  });

  it.each([
    ['a character outside both alphabets', `${k1.toString('base64').slice(0, 40)}!!!=`],
    ['mixed standard and url alphabets', `+-${k1.toString('base64url').slice(2)}`],
    ['whitespace inside', `${k1.toString('base64').slice(0, 20)} ${k1.toString('base64').slice(20)}`],
    ['a non-canonical last character', nonCanonical(k1)],
    ['too much padding', `${k1.toString('base64')}=`],
  ])('rejects a key that is not valid base64 (%s), naming the key id', (_label, key) => {
    expectKeyringError(
      () => Keyring.fromConfig({ activeKeyId: 'bad', keys: [{ id: 'bad', key }] }),
      'key_invalid',
      /^encryption key "bad" must be base64 of exactly 32 bytes \(not valid base64\)$/,
    );
  });

  it('rejects a duplicate key id, naming it', () => {
    expectKeyringError(
      () =>
        Keyring.fromConfig({
          activeKeyId: 'k1',
          keys: [
            { id: 'k1', key: k1.toString('base64') },
            { id: 'k1', key: k2.toString('base64') },
          ],
        }),
      'key_invalid',
      /"k1".*more than once/,
    );
  });

  it('rejects an active key id that is not among the keys, naming it', () => {
    expectKeyringError(
      () => Keyring.fromConfig({ activeKeyId: 'k9', keys: [{ id: 'k1', key: k1.toString('base64') }] }),
      'active_key_missing',
      /"k9".*\(k1\)/,
    );
    expectKeyringError(
      () => Keyring.fromConfig({ activeKeyId: 'k1', keys: [] }),
      'active_key_missing',
      /"k1"/,
    );
  });

  it.each(['k.1', '', 'a'.repeat(33), 'key 1', 'ключ'])('rejects the invalid key id %j', (id) => {
    expectKeyringError(
      () => Keyring.fromConfig({ activeKeyId: id, keys: [{ id, key: k1.toString('base64') }] }),
      'key_invalid',
      /^encryption key id at index 0 must match/,
    );
  });

  it('accepts the longest and most varied valid key id', () => {
    const id = `Az09_-${'x'.repeat(26)}`;
    expect(id).toHaveLength(32);
    expect(Keyring.fromConfig({ activeKeyId: id, keys: [{ id, key: generateKey() }] }).activeKeyId).toBe(id);
  });

  it('does not echo key material in a validation error', () => {
    const secret = randomBytes(31).toString('base64');
    let message = '';
    try {
      Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: secret }] });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('"k1"');
    expect(message).not.toContain(secret);
    expect(message).not.toContain(secret.slice(0, 12));
  });
});

describe('Keyring lookups and redaction', () => {
  const ring = Keyring.fromConfig({
    activeKeyId: 'k2',
    keys: [
      { id: 'k2', key: k2.toString('base64') },
      { id: 'k1', key: k1.toString('base64url') },
    ],
  });

  it('throws key_unknown for an id it does not hold', () => {
    expectKeyringError(() => ring.keyFor('k3'), 'key_unknown', /"k3"/);
  });

  it('prints ids only, active starred, in toJSON and inspect', () => {
    expect(ring.toJSON()).toBe('[Keyring: k2*, k1]');
    expect(JSON.stringify({ ring })).toBe('{"ring":"[Keyring: k2*, k1]"}');
    expect(inspect(ring)).toBe('[Keyring: k2*, k1]');
  });

  it('never shows key bytes in JSON.stringify or util.inspect', () => {
    const shown = [
      JSON.stringify(ring),
      JSON.stringify({ nested: { ring } }),
      inspect(ring),
      inspect({ ring }, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
      String(ring),
    ].join('\n');
    for (const key of [k1, k2]) {
      expect(shown).not.toContain(key.toString('base64'));
      expect(shown).not.toContain(key.toString('base64url'));
      expect(shown).not.toContain(key.toString('base64').slice(0, 16));
      expect(shown).not.toContain(key.toString('hex').slice(0, 16));
    }
  });
});

describe('generateKey', () => {
  it('returns standard base64 of 32 fresh random bytes that the keyring accepts', () => {
    const a = generateKey();
    const b = generateKey();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a, 'base64')).toHaveLength(32);
    const ring = Keyring.fromConfig({ activeKeyId: 'g', keys: [{ id: 'g', key: a }] });
    expect(ring.keyFor('g').export().toString('base64')).toBe(a);
  });
});
