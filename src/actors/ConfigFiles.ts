/**
 * Issues signed config files and resolves a presented config back to the account and device it belongs to. A config
 * whose account was revoked or deleted resolves to ConfigRevoked, distinct from one this server never signed.
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { canonicalJson, type ConfigBody, ConfigBody as ConfigBodySchema, SignedConfig } from "../domain/config.js"
import { ConfigInvalid, ConfigRevoked } from "../domain/errors.js"
import type { CustomerId, DeviceId, HostId } from "../domain/ids.js"
import { EventStore } from "../eventstore/EventStore.js"
import { ServerKeys } from "../server/ServerKeys.js"
import { AccountActors } from "./AccountActors.js"

export type Principal =
  | { readonly kind: "host"; readonly hostId: HostId; readonly deviceId: DeviceId; readonly devicePublicKey: string; readonly fingerprint: string }
  | {
    readonly kind: "customer"
    readonly customerId: CustomerId
    readonly hostId: HostId
    readonly devicePublicKey: string
    readonly fingerprint: string
  }

export const LOOKUP_COMMUNICATION = "communication"

export class ConfigFiles extends Context.Tag("tessera/ConfigFiles")<ConfigFiles, {
  readonly sign: (body: ConfigBody) => SignedConfig
  readonly resolve: (config: SignedConfig) => Effect.Effect<Principal, ConfigInvalid | ConfigRevoked>
}>() {}

export const ConfigFilesLive = Layer.effect(
  ConfigFiles,
  Effect.gen(function*() {
    const keys = yield* ServerKeys
    const actors = yield* AccountActors
    const store = yield* EventStore
    const encodeBody = Schema.encodeSync(ConfigBodySchema)

    const resolveCustomer = (body: Extract<ConfigBody, { kind: "customer" }>) =>
      Effect.gen(function*() {
        const found = yield* store.lookup(LOOKUP_COMMUNICATION, keys.keyedHash(LOOKUP_COMMUNICATION, body.communicationId))
        if (Option.isNone(found)) return yield* new ConfigRevoked()
        const { state } = yield* actors.customers.read(found.value)
        if (state.status !== "active" || state.device?.communicationId !== body.communicationId ||
          state.device.fingerprint !== body.deviceFingerprint) {
          return yield* new ConfigRevoked()
        }
        return {
          kind: "customer",
          customerId: state.customerId,
          hostId: state.hostId,
          devicePublicKey: state.device.publicKey,
          fingerprint: state.device.fingerprint
        } satisfies Principal
      })

    const resolveHost = (body: Extract<ConfigBody, { kind: "host" }>) =>
      Effect.gen(function*() {
        const { state } = yield* actors.hosts.read(body.hostId)
        const device = state.status === "enrolled" ? state.devices[body.deviceId] : undefined
        if (state.status !== "enrolled" || !device || device.fingerprint !== body.deviceFingerprint) {
          return yield* new ConfigRevoked()
        }
        return {
          kind: "host",
          hostId: body.hostId,
          deviceId: body.deviceId,
          devicePublicKey: device.publicKey,
          fingerprint: device.fingerprint
        } satisfies Principal
      })

    return {
      sign: (body) => new SignedConfig({ body, signature: keys.signConfig(canonicalJson(encodeBody(body))) }),
      resolve: (config) =>
        Effect.gen(function*() {
          if (!keys.verifyConfig(canonicalJson(encodeBody(config.body)), config.signature)) {
            return yield* new ConfigInvalid()
          }
          return yield* (config.body.kind === "customer" ? resolveCustomer(config.body) : resolveHost(config.body))
        })
    }
  })
)

