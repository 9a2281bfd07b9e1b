/**
 * A customer's device activates with its one-time code and its identity public key, and receives its signed config
 * file. Failed attempts are counted per client address (in memory only) so that codes cannot be guessed.
 */
import { Clock, Context, Effect, Layer, Option } from "effect"
import { normalizeActivationCode } from "../domain/activationCode.js"
import { CustomerConfigBody, type SignedConfig } from "../domain/config.js"
import { decideCustomer, evolveCustomer } from "../domain/customer.js"
import { AccountBusy, type ActivationError, ActivationCodeInvalid, InvalidRequest } from "../domain/errors.js"
import type { CustomerId } from "../domain/ids.js"
import { EventStore } from "../eventstore/EventStore.js"
import { ServerConfig } from "../server/Config.js"
import { ServerKeys } from "../server/ServerKeys.js"
import { AccountActors } from "./AccountActors.js"
import { ConfigFiles, LOOKUP_COMMUNICATION } from "./ConfigFiles.js"
import { LOOKUP_ACTIVATION_CODE } from "./CustomerAccounts.js"
import { checkDevicePublicKey } from "./deviceKeys.js"
import { newCommunicationId } from "./newIds.js"

export class Activation extends Context.Tag("tessera/Activation")<Activation, {
  readonly activate: (
    code: string,
    devicePublicKey: Uint8Array
  ) => Effect.Effect<SignedConfig, ActivationError | InvalidRequest | AccountBusy>
}>() {}

export const ActivationLive = Layer.effect(
  Activation,
  Effect.gen(function*() {
    const actors = yield* AccountActors
    const keys = yield* ServerKeys
    const store = yield* EventStore
    const configs = yield* ConfigFiles
    const settings = yield* ServerConfig

    return {
      activate: (typed, devicePublicKey) =>
        Effect.gen(function*() {
          // The key first: a right code with a bad key must not tell a guesser that the code exists.
          const device = yield* checkDevicePublicKey(devicePublicKey)
          const normalized = normalizeActivationCode(typed)
          if (normalized === undefined) return yield* new ActivationCodeInvalid()
          const codeHash = keys.keyedHash(LOOKUP_ACTIVATION_CODE, normalized)
          const found = yield* store.lookup(LOOKUP_ACTIVATION_CODE, codeHash)
          if (Option.isNone(found)) return yield* new ActivationCodeInvalid()
          const customerId = found.value as CustomerId
          const communicationId = yield* newCommunicationId
          const { config, hostId } = yield* actors.customers.transact(customerId, (current) =>
            Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const events = yield* decideCustomer(current.state, {
                _tag: "Activate",
                codeHash,
                now,
                communicationId,
                devicePublicKey: device.publicKey,
                deviceFingerprint: device.fingerprint
              })
              if (current.state.status === "absent" || current.state.status === "deleted") {
                return yield* new ActivationCodeInvalid()
              }
              const previous = current.state.device
              yield* actors.commit({
                customers: [{ customerId, expectedVersion: current.version, events }],
                lookups: {
                  put: [{ kind: LOOKUP_COMMUNICATION, key: keys.keyedHash(LOOKUP_COMMUNICATION, communicationId), streamId: customerId }],
                  remove: previous
                    ? [{ kind: LOOKUP_COMMUNICATION, key: keys.keyedHash(LOOKUP_COMMUNICATION, previous.communicationId) }]
                    : []
                }
              }).pipe(Effect.catchTag("LookupTaken", () => Effect.die("communication id collision")))
              const hostId = current.state.hostId
              const { state: host } = yield* actors.hosts.read(hostId)
              const hostIdentityKeys = host.status === "enrolled" ? Object.values(host.devices).map((d) => d.publicKey) : []
              const config = configs.sign(
                new CustomerConfigBody({
                  version: 1,
                  kind: "customer",
                  communicationId,
                  serverAddress: settings.publicUrl,
                  hostContact: hostId,
                  hostIdentityKeys,
                  deviceFingerprint: device.fingerprint,
                  issuedAt: now
                })
              )
              return {
                result: { config, hostId },
                next: { state: events.reduce(evolveCustomer, current.state), version: current.version + events.length }
              }
            }).pipe(Effect.catchTag("CustomerNotFound", () => Effect.fail(new ActivationCodeInvalid()))))
          yield* actors.changes.publish({ _tag: "CustomerActivated", hostId, customerId })
          return config
        })
    }
  })
)
