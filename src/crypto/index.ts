export {
  CryptoError,
  type CryptoErrorCode,
  DecryptionError,
  type DecryptionErrorCode,
  KeyringError,
  type KeyringErrorCode,
} from './errors.js';
export { configKeySource, type KeySource, loadKeyring } from './key-source.js';
export { generateKey, KEY_ID_PATTERN, KEY_LENGTH, Keyring, type KeyringConfig } from './keyring.js';
export { type SealContext, Sealer, sealedKeyId } from './sealer.js';
