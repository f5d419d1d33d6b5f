/** Encrypted secrets: the keyring, the secret box, provider keys and rotation. */
export { Keyring, SECRET_KEY_HINT, parseSecretKeys, type SecretKey } from './keyring.ts';
export { createSecretBox, isEncryptedSecret, maskSecret, type EncryptedSecret, type SecretBox } from './secret-box.ts';
export { ProviderKeyService, type ProviderKeyInput, type ProviderKeyRecord, type ProviderKeyView } from './provider-keys.ts';
export { SECRET_COLLECTIONS, rotateSecrets, type RotationSummary } from './rotate.ts';
