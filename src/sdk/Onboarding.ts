/**
 * Becoming a device: a host device enrolls with the operator's enrollment code, a customer's app activates with the
 * code from the practice. Either way the device makes its identity key pair here, sends only the public key, and
 * keeps the signed config file the server returns together with the key pair in its key store.
 */
import { Effect } from "effect"
import { generateIdentityKeyPair, type IdentityKeyPair } from "../crypto/identity.js"
import { type Connection, openConnection } from "./Connection.js"
import type { DeviceCredentials, KeyStore } from "./KeyStore.js"
import { newProfileKey } from "./profile.js"

export interface OnboardingOptions {
  /** Node keeps the private key in a file and needs it extractable; browsers keep it non-extractable (default). */
  readonly extractableKey?: boolean
}

const keyPair = (options: OnboardingOptions) =>
  Effect.promise(() => generateIdentityKeyPair({ extractable: options.extractableKey ?? false }))

const redeem = <E>(
  url: string,
  store: KeyStore,
  options: OnboardingOptions,
  call: (connection: Connection, keys: IdentityKeyPair) => Effect.Effect<Omit<DeviceCredentials, "keys">, E>
) =>
  Effect.scoped(Effect.gen(function*() {
    const keys = yield* keyPair(options)
    const connection = yield* openConnection(url)
    const credentials: DeviceCredentials = { ...(yield* call(connection, keys)), keys }
    yield* Effect.promise(() => store.save(credentials))
    return credentials
  }))

export const enrollHostDevice = (
  url: string,
  enrollmentCode: string,
  store: KeyStore,
  options: OnboardingOptions = {}
) =>
  redeem(url, store, options, (connection, keys) =>
    Effect.map(
      connection.rpc.host.enrollDevice({ enrollmentCode, devicePublicKey: keys.publicKeySpki }),
      (config) => ({ config, profileKey: newProfileKey() })
    ))

export const activateCustomer = (
  url: string,
  activationCode: string,
  store: KeyStore,
  options: OnboardingOptions = {}
) =>
  redeem(url, store, options, (connection, keys) =>
    Effect.map(
      connection.rpc.customer.activate({ activationCode, devicePublicKey: keys.publicKeySpki }),
      (config) => ({ config })
    ))
