import { Keyring, type KeyringConfig } from './keyring.js';

/**
 * Where the encryption keys come from: the key-custody seam. The service asks its source once,
 * at start, and keeps the result in a {@link Keyring} for the life of the process; rotation is a
 * restart with a new set (docs/operations.md#key-custody).
 *
 * The one implementation is {@link configKeySource} (the keys in `encryption.keys`). A source
 * backed by a KMS or secret manager implements the same method, e.g. by unwrapping data keys
 * stored wrapped in the config with the KMS's decrypt call, and hands back the same shape: the
 * keyring validates it like a config file's (ids, 32-byte keys, the active id among them).
 */
export interface KeySource {
  /** What the keys come from, for messages and `doctor`; never key material. */
  readonly description: string;
  /** The active key id and every key that may open a stored value, base64 as in the config. */
  load(): Promise<KeyringConfig>;
}

/** The keys of the config file's `encryption` section, as they are. */
export function configKeySource(encryption: {
  activeKey: string;
  keys: ReadonlyArray<{ id: string; key: string }>;
}): KeySource {
  return {
    description: 'config file (encryption.keys)',
    load: async () => ({ activeKeyId: encryption.activeKey, keys: encryption.keys }),
  };
}

/** Asks `source` for the keys and loads them; fails fast with a `KeyringError` naming the key at fault. */
export async function loadKeyring(source: KeySource): Promise<Keyring> {
  return Keyring.fromConfig(await source.load());
}
