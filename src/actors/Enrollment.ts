/**
 * Host accounts and their devices: the operator enrolls a host (printing a one-time enrollment code); a host device
 * redeems the code with its identity public key and receives its signed config file.
 */
import { Clock, Context, Effect, Either, Layer, Option } from "effect"
import { MAX_CODE_VALIDITY_SECONDS, normalizeActivationCode } from "../domain/activationCode.js"
import { HostConfigBody, type SignedConfig } from "../domain/config.js"
import { AccountBusy, EnrollmentCodeInvalid, InvalidRequest } from "../domain/errors.js"
import { decideHost, evolveHost as evolveHostState } from "../domain/host.js"
import type { HostId } from "../domain/ids.js"
import { EventStore } from "../eventstore/EventStore.js"
import { DataKeys } from "../eventstore/DataKeys.js"
import { ServerConfig } from "../server/Config.js"
import { ServerKeys } from "../server/ServerKeys.js"
import { AccountActors } from "./AccountActors.js"
import { ConfigFiles } from "./ConfigFiles.js"
import { checkDevicePublicKey } from "./deviceKeys.js"
import { newCode, newDeviceId, newHostId } from "./newIds.js"

export const LOOKUP_ENROLLMENT_CODE = "enrollment-code"

export interface IssuedCode {
  readonly code: string
  readonly expiresAt: number
}

export class Enrollment extends Context.Tag("tessera/Enrollment")<Enrollment, {
  readonly enrollHost: (validForSeconds?: number) => Effect.Effect<IssuedCode & { readonly hostId: HostId }, InvalidRequest>
  readonly issueEnrollmentCode: (hostId: HostId, validForSeconds?: number) => Effect.Effect<IssuedCode, InvalidRequest | AccountBusy>
  readonly enrollDevice: (
    code: string,
    devicePublicKey: Uint8Array
  ) => Effect.Effect<SignedConfig, EnrollmentCodeInvalid | InvalidRequest | AccountBusy>
}>() {}

export const EnrollmentLive = Layer.effect(
  Enrollment,
  Effect.gen(function*() {
    const actors = yield* AccountActors
    const keys = yield* ServerKeys
    const store = yield* EventStore
    const dataKeys = yield* DataKeys
    const configs = yield* ConfigFiles
    const settings = yield* ServerConfig

    const issue = (hostId: HostId, validForSeconds: number) =>
      actors.hosts.transact(hostId, (current) =>
        Effect.gen(function*() {
          const code = yield* newCode
          const codeHash = keys.keyedHash(LOOKUP_ENROLLMENT_CODE, normalizeActivationCode(code)!)
          const now = yield* Clock.currentTimeMillis
          const events = yield* decideHost(current.state, { _tag: "IssueEnrollmentCode", codeHash, now, validForSeconds })
          yield* actors.commit({
            hosts: [{ hostId, expectedVersion: current.version, events }],
            lookups: { put: [{ kind: LOOKUP_ENROLLMENT_CODE, key: codeHash, streamId: hostId }] }
          }).pipe(Effect.catchTag("LookupTaken", () => Effect.die("enrollment code hash collision")))
          return {
            result: { code, expiresAt: now + validForSeconds * 1000 },
            next: { state: events.reduce(evolveHostState, current.state), version: current.version + events.length }
          }
        }).pipe(Effect.catchTag("CustomerNotFound", Effect.die), Effect.catchTag("EnrollmentCodeInvalid", Effect.die)))

    return {
      enrollHost: (validForSeconds = MAX_CODE_VALIDITY_SECONDS) =>
        Effect.gen(function*() {
          const hostId = yield* newHostId
          yield* dataKeys.create(hostId)
          const events = Either.getOrThrow(decideHost({ status: "absent" }, { _tag: "EnrollHost", hostId }))
          yield* actors.commit({ hosts: [{ hostId, expectedVersion: 0, events }] }).pipe(Effect.orDie)
          const issued = yield* issue(hostId, validForSeconds).pipe(Effect.catchTag("AccountBusy", Effect.die))
          return { hostId, ...issued }
        }),
      issueEnrollmentCode: (hostId, validForSeconds = MAX_CODE_VALIDITY_SECONDS) => issue(hostId, validForSeconds),
      enrollDevice: (typed, devicePublicKey) =>
        Effect.gen(function*() {
          // The key first: a right code with a bad key must not tell a guesser that the code exists.
          const device = yield* checkDevicePublicKey(devicePublicKey)
          const normalized = normalizeActivationCode(typed)
          if (normalized === undefined) return yield* new EnrollmentCodeInvalid({ reason: "unknown" })
          const codeHash = keys.keyedHash(LOOKUP_ENROLLMENT_CODE, normalized)
          const found = yield* store.lookup(LOOKUP_ENROLLMENT_CODE, codeHash)
          if (Option.isNone(found)) return yield* new EnrollmentCodeInvalid({ reason: "unknown" })
          const hostId = found.value as HostId
          const deviceId = yield* newDeviceId
          return yield* actors.hosts.transact(hostId, (current) =>
            Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const events = yield* decideHost(current.state, {
                _tag: "EnrollDevice",
                codeHash,
                now,
                deviceId,
                devicePublicKey: device.publicKey,
                deviceFingerprint: device.fingerprint
              })
              yield* actors.commit({ hosts: [{ hostId, expectedVersion: current.version, events }] }).pipe(
                Effect.catchTag("LookupTaken", Effect.die)
              )
              const config = configs.sign(
                new HostConfigBody({
                  version: 1,
                  kind: "host",
                  hostId,
                  deviceId,
                  serverAddress: settings.publicUrl,
                  deviceFingerprint: device.fingerprint,
                  issuedAt: now
                })
              )
              return {
                result: config,
                next: { state: events.reduce(evolveHostState, current.state), version: current.version + events.length }
              }
            }).pipe(Effect.catchTag("CustomerNotFound", Effect.die)))
        })
    }
  })
)
