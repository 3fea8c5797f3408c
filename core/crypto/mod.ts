/**
 * Encrypted datasets in raw streams: the key (`crypt_keydata`, the wrapping key from a key or
 * passphrase, the unwrapped master and HMAC keys), block decryption and authentication (AES-GCM,
 * AES-CCM, HMAC-SHA512), the MACs of dnode blocks and of the objset, and a record-by-record MAC
 * checker for `verify`. Pure TypeScript over Web Crypto; a native AEAD may be passed in.
 *
 * @module
 */

export * from "./aead.ts";
export * from "./keys.ts";
export * from "./block.ts";
export * from "./dnode_mac.ts";
export * from "./objset_mac.ts";
export * from "./stream_macs.ts";
