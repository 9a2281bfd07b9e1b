/**
 * Where a device keeps what makes it a tessera device: its signed config file and its identity key pair. Behind an
 * interface so that Node keeps a file (FileKeyStore) and the browser IndexedDB with a non-extractable key.
 * `clear` is what the SDK does when the server refuses the config as revoked: as after an uninstall.
 */
import { Schema } from "effect"
import type { IdentityKeyPair } from "../crypto/identity.js"
import { SignedConfig } from "../domain/config.js"

export interface DeviceCredentials {
  readonly config: SignedConfig
  readonly keys: IdentityKeyPair
  /** Host devices only: the key that seals customer profiles; it never leaves the host's devices. */
  readonly profileKey?: Uint8Array
}

export interface KeyStore {
  readonly load: () => Promise<DeviceCredentials | undefined>
  readonly save: (credentials: DeviceCredentials) => Promise<void>
  readonly clear: () => Promise<void>
}

export const encodeConfig = Schema.encodeSync(SignedConfig)
export const decodeConfig = Schema.decodeUnknownSync(SignedConfig)

/** Keeps credentials in memory only: for tests, and for apps that must not persist anything. */
export const memoryKeyStore = (): KeyStore => {
  let stored: DeviceCredentials | undefined
  return {
    load: async () => stored,
    save: async (credentials) => {
      stored = credentials
    },
    clear: async () => {
      stored = undefined
    }
  }
}
