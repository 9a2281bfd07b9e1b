/**
 * What a host does with its customer accounts: create (with a profile sealed on the host's device), list, issue an
 * activation code, revoke an activation, delete. Deleting destroys the account's data key (crypto-shredding).
 */
import { Clock, Context, Effect, Layer } from "effect"
import { MAX_CODE_VALIDITY_SECONDS, normalizeActivationCode } from "../domain/activationCode.js"
import { type CustomerStatus, decideCustomer, evolveCustomer } from "../domain/customer.js"
import { AccountBusy, CustomerNotFound, InvalidRequest } from "../domain/errors.js"
import { decideHost, evolveHost } from "../domain/host.js"
import type { CustomerId, HostId } from "../domain/ids.js"
import { DataKeys } from "../eventstore/DataKeys.js"
import type { LookupChange } from "../eventstore/EventStore.js"
import { ServerKeys } from "../server/ServerKeys.js"
import { AccountActors } from "./AccountActors.js"
import { LOOKUP_COMMUNICATION } from "./ConfigFiles.js"
import type { IssuedCode } from "./Enrollment.js"
import { newCode, newCustomerId } from "./newIds.js"

export const LOOKUP_ACTIVATION_CODE = "activation-code"

export interface CustomerSummary {
  readonly customerId: CustomerId
  readonly status: CustomerStatus
  readonly sealedProfile: string
  readonly codeExpiresAt: number | undefined
  readonly devicePublicKey: string | undefined
  readonly deviceFingerprint: string | undefined
}

export class CustomerAccounts extends Context.Tag("tessera/CustomerAccounts")<CustomerAccounts, {
  readonly create: (hostId: HostId, sealedProfile: string) => Effect.Effect<CustomerId, InvalidRequest | AccountBusy>
  readonly list: (hostId: HostId) => Effect.Effect<ReadonlyArray<CustomerSummary>>
  readonly get: (hostId: HostId, customerId: CustomerId) => Effect.Effect<CustomerSummary, CustomerNotFound>
  readonly issueActivationCode: (
    hostId: HostId,
    customerId: CustomerId,
    validForSeconds?: number
  ) => Effect.Effect<IssuedCode, CustomerNotFound | InvalidRequest | AccountBusy>
  readonly revokeActivation: (hostId: HostId, customerId: CustomerId) => Effect.Effect<void, CustomerNotFound | InvalidRequest | AccountBusy>
  readonly delete: (hostId: HostId, customerId: CustomerId) => Effect.Effect<void, CustomerNotFound | AccountBusy>
  readonly belongsTo: (hostId: HostId, customerId: CustomerId) => Effect.Effect<boolean>
}>() {}

export const CustomerAccountsLive = Layer.effect(
  CustomerAccounts,
  Effect.gen(function*() {
    const actors = yield* AccountActors
    const keys = yield* ServerKeys
    const dataKeys = yield* DataKeys

    const belongsTo = (hostId: HostId, customerId: CustomerId) =>
      Effect.map(actors.hosts.read(hostId), ({ state }) => state.status === "enrolled" && state.customers.includes(customerId))

    const ownCustomer = (hostId: HostId, customerId: CustomerId) =>
      Effect.flatMap(belongsTo(hostId, customerId), (ok) => (ok ? Effect.void : Effect.fail(new CustomerNotFound())))

    const summary = (customerId: CustomerId) =>
      Effect.map(actors.customers.read(customerId), ({ state }): CustomerSummary | undefined =>
        state.status === "absent" || state.status === "deleted" ? undefined : {
          customerId,
          status: state.status,
          sealedProfile: state.sealedProfile,
          codeExpiresAt: state.codes.pending?.expiresAt,
          devicePublicKey: state.device?.publicKey,
          deviceFingerprint: state.device?.fingerprint
        })

    return {
      belongsTo,
      create: (hostId, sealedProfile) =>
        Effect.gen(function*() {
          const customerId = yield* newCustomerId
          yield* dataKeys.create(customerId)
          return yield* actors.hosts.transact(hostId, (host) =>
            Effect.gen(function*() {
              const hostEvents = yield* decideHost(host.state, { _tag: "AddCustomer", customerId })
              const customerEvents = yield* decideCustomer({ status: "absent" }, {
                _tag: "CreateCustomer",
                customerId,
                hostId,
                sealedProfile
              })
              yield* actors.commit({
                hosts: [{ hostId, expectedVersion: host.version, events: hostEvents }],
                customers: [{ customerId, expectedVersion: 0, events: customerEvents }]
              }).pipe(Effect.catchTag("LookupTaken", Effect.die))
              return {
                result: customerId,
                next: { state: hostEvents.reduce(evolveHost, host.state), version: host.version + hostEvents.length }
              }
            }).pipe(Effect.catchTags({
              CustomerNotFound: Effect.die,
              ActivationCodeInvalid: Effect.die,
              EnrollmentCodeInvalid: Effect.die
            })))
        }).pipe(Effect.catchTags({
          ActivationCodeExpired: Effect.die,
          ActivationCodeUsed: Effect.die,
          ActivationCodeSuperseded: Effect.die
        })),
      list: (hostId) =>
        Effect.gen(function*() {
          const { state } = yield* actors.hosts.read(hostId)
          if (state.status !== "enrolled") return []
          const all = yield* Effect.forEach(state.customers, summary, { concurrency: 8 })
          return all.filter((s): s is CustomerSummary => s !== undefined)
        }),
      get: (hostId, customerId) =>
        Effect.gen(function*() {
          yield* ownCustomer(hostId, customerId)
          const found = yield* summary(customerId)
          if (found === undefined) return yield* new CustomerNotFound()
          return found
        }),
      issueActivationCode: (hostId, customerId, validForSeconds = MAX_CODE_VALIDITY_SECONDS) =>
        Effect.gen(function*() {
          yield* ownCustomer(hostId, customerId)
          return yield* actors.customers.transact(customerId, (current) =>
            Effect.gen(function*() {
              const code = yield* newCode
              const codeHash = keys.keyedHash(LOOKUP_ACTIVATION_CODE, normalizeActivationCode(code)!)
              const now = yield* Clock.currentTimeMillis
              const events = yield* decideCustomer(current.state, { _tag: "IssueActivationCode", codeHash, now, validForSeconds })
              yield* actors.commit({
                customers: [{ customerId, expectedVersion: current.version, events }],
                lookups: { put: [{ kind: LOOKUP_ACTIVATION_CODE, key: codeHash, streamId: customerId }] }
              }).pipe(Effect.catchTag("LookupTaken", () => Effect.die("activation code hash collision")))
              return {
                result: { code, expiresAt: now + validForSeconds * 1000 },
                next: { state: events.reduce(evolveCustomer, current.state), version: current.version + events.length }
              }
            }))
        }).pipe(Effect.catchTags({
          ActivationCodeInvalid: Effect.die,
          ActivationCodeExpired: Effect.die,
          ActivationCodeUsed: Effect.die,
          ActivationCodeSuperseded: Effect.die
        })),
      revokeActivation: (hostId, customerId) =>
        Effect.gen(function*() {
          yield* ownCustomer(hostId, customerId)
          yield* actors.customers.transact(customerId, (current) =>
            Effect.gen(function*() {
              const events = yield* decideCustomer(current.state, { _tag: "RevokeActivation" })
              const device = current.state.status === "active" ? current.state.device : undefined
              const lookups: LookupChange = device
                ? { remove: [{ kind: LOOKUP_COMMUNICATION, key: keys.keyedHash(LOOKUP_COMMUNICATION, device.communicationId) }] }
                : {}
              yield* actors.commit({ customers: [{ customerId, expectedVersion: current.version, events }], lookups }).pipe(
                Effect.catchTag("LookupTaken", Effect.die)
              )
              return {
                result: undefined,
                next: { state: events.reduce(evolveCustomer, current.state), version: current.version + events.length }
              }
            }))
          yield* actors.changes.publish({ _tag: "CustomerAccessEnded", hostId, customerId })
        }).pipe(Effect.catchTags({
          ActivationCodeInvalid: Effect.die,
          ActivationCodeExpired: Effect.die,
          ActivationCodeUsed: Effect.die,
          ActivationCodeSuperseded: Effect.die
        })),
      delete: (hostId, customerId) =>
        Effect.gen(function*() {
          yield* actors.hosts.transact(hostId, (host) =>
            actors.customers.transact(customerId, (customer) =>
              Effect.gen(function*() {
                const hostEvents = yield* decideHost(host.state, { _tag: "RemoveCustomer", customerId })
                const customerEvents = yield* decideCustomer(customer.state, { _tag: "DeleteCustomer" })
                const state = customer.state
                const remove = state.status === "absent" || state.status === "deleted" ? [] : [
                  ...Object.keys(state.codes.statuses).map((key) => ({ kind: LOOKUP_ACTIVATION_CODE, key })),
                  ...(state.device
                    ? [{ kind: LOOKUP_COMMUNICATION, key: keys.keyedHash(LOOKUP_COMMUNICATION, state.device.communicationId) }]
                    : [])
                ]
                yield* actors.commit({
                  hosts: [{ hostId, expectedVersion: host.version, events: hostEvents }],
                  customers: [{ customerId, expectedVersion: customer.version, events: customerEvents }],
                  lookups: { remove }
                }).pipe(Effect.catchTag("LookupTaken", Effect.die))
                return {
                  result: {
                    result: undefined,
                    next: { state: hostEvents.reduce(evolveHost, host.state), version: host.version + hostEvents.length }
                  },
                  next: { state: customerEvents.reduce(evolveCustomer, customer.state), version: customer.version + customerEvents.length }
                }
              })
            )
          )
          yield* dataKeys.shred(customerId)
          yield* actors.changes.publish({ _tag: "CustomerAccessEnded", hostId, customerId })
        }).pipe(Effect.catchTags({
          InvalidRequest: Effect.die,
          EnrollmentCodeInvalid: Effect.die,
          ActivationCodeInvalid: Effect.die,
          ActivationCodeExpired: Effect.die,
          ActivationCodeUsed: Effect.die,
          ActivationCodeSuperseded: Effect.die
        }))
    }
  })
)
