/**
 * The practice ends a customer's access (revoking the activation, or deleting the account) while the customer's app
 * is connected: the app is told, its connection closes with 4001 at once, it forgets its config, and that config is
 * refused with ConfigRevoked on every later connect.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Layer } from "effect"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive, type TestServer } from "../support/server.js"
import { activate, type CustomerDevice, customerDevice, failure, Host, HostLive, next, received } from "./story.js"

const Fixture = HostLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(), Sdk.NodeWebSocket)))

/** The app's connection closes as revoked within a second or two ("at once", with time for the last event). */
const closedAsRevoked = (session: Sdk.DeviceSession) =>
  Deferred.await(session.closed).pipe(
    Effect.timeoutFail({ duration: Duration.seconds(3), onTimeout: () => new Error("the connection stayed open") }),
    Effect.orDie
  )

/** What the customer's device notices once its access has ended. */
const expectLockedOut = (server: TestServer, customer: CustomerDevice, sessions: ReadonlyArray<Sdk.DeviceSession>) =>
  Effect.gen(function*() {
    for (const session of sessions) {
      expect(yield* closedAsRevoked(session)).toEqual({ code: 4001, revoked: true })
      expect((yield* received(session)).map((e) => e._tag)).toContain("AccessRevoked")
    }
    expect(yield* Effect.promise(() => customer.store.load())).toBeUndefined()
    // The old credentials, kept elsewhere, get the distinct refusal on every later connect.
    for (let attempt = 0; attempt < 2; attempt++) {
      const store = Sdk.memoryKeyStore()
      yield* Effect.promise(() => store.save(customer.credentials))
      const refused = yield* failure(Sdk.signIn(customer.credentials, store, { url: server.url }))
      expect(refused._tag).toBe("ConfigRevoked")
      expect(yield* Effect.promise(() => store.load())).toBeUndefined()
    }
  })

describe("revocation", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("revoking the activation closes every open app of the customer (4001) and its config is refused afterwards", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        const secondApp = yield* Sdk.signIn(customer.credentials, Sdk.memoryKeyStore(), { url: server.url })
        yield* customer.session.setReady(true)
        yield* next(host.session, "PresenceChanged", (e) => e.account === customer.customerId && e.online)

        yield* host.session.rpc.host.revokeActivation({ customerId: customer.customerId })
        yield* expectLockedOut(server, customer, [customer.session, secondApp])
        expect((yield* next(host.session, "PresenceChanged", (e) => e.account === customer.customerId)).online).toBe(false)
        const [summary] = (yield* host.session.rpc.host.listCustomers()).filter((c) => c.customerId === customer.customerId)
        expect(summary).toMatchObject({ status: "revoked", online: false })
        expect(summary?.deviceFingerprint).toBeUndefined()
        // Revoking twice: nothing left to revoke.
        const again = yield* failure(host.session.rpc.host.revokeActivation({ customerId: customer.customerId }))
        expect(again._tag).toBe("InvalidRequest")
      }))

    it.scoped("after a revocation the practice can issue a new code; the new device works, the old config stays refused", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        yield* host.session.rpc.host.revokeActivation({ customerId: customer.customerId })
        yield* closedAsRevoked(customer.session)
        const { code } = yield* host.session.rpc.host.issueActivationCode({ customerId: customer.customerId })
        const store = Sdk.memoryKeyStore()
        const fresh = yield* activate(server, code, store)
        expect(fresh.config.body.kind === "customer" && customer.credentials.config.body.kind === "customer" &&
          fresh.config.body.communicationId !== customer.credentials.config.body.communicationId).toBe(true)
        const session = yield* Sdk.signIn(fresh, store, { url: server.url })
        expect(session.kind).toBe("customer")
        expect((yield* failure(Sdk.signIn(customer.credentials, Sdk.memoryKeyStore(), { url: server.url })))._tag).toBe("ConfigRevoked")
      }))

    it.scoped("deleting the account ends its call (access-revoked), closes its app (4001) and refuses its config", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        yield* Effect.all([host.session.setReady(true), customer.session.setReady(true)])
        const { callId } = yield* host.session.rpc.call.invite({ peer: customer.customerId })
        yield* next(customer.session, "IncomingCall", (e) => e.callId === callId)
        yield* customer.session.rpc.call.accept({ callId })
        yield* next(host.session, "CallAccepted", (e) => e.callId === callId)

        yield* host.session.rpc.host.deleteCustomer({ customerId: customer.customerId })
        expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe("access-revoked")
        yield* expectLockedOut(server, customer, [customer.session])
        // The customer's app heard the call end for the same reason, before it was told its access ended.
        const last = (yield* received(customer.session)).slice(-2).map((e) => e._tag === "CallEnded" ? e.reason : e._tag)
        expect(last).toEqual(["access-revoked", "AccessRevoked"])
        expect((yield* host.session.rpc.host.listCustomers()).map((c) => c.customerId)).not.toContain(customer.customerId)
        // Nothing can be done with the account any more.
        const customerId = customer.customerId
        expect((yield* failure(host.session.rpc.host.issueActivationCode({ customerId })))._tag).toBe("CustomerNotFound")
        expect((yield* failure(host.session.rpc.host.deleteCustomer({ customerId })))._tag).toBe("CustomerNotFound")
        expect((yield* failure(host.session.rpc.call.invite({ peer: customerId })))._tag).toBe("NotPermitted")
      }))

    it.scoped("deleting an account whose code was never used makes that code invalid", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(host.credentials.profileKey!, { name: "Nie Aktiviert" }))
        const { customerId } = yield* host.session.rpc.host.createCustomer({ sealedProfile })
        const { code } = yield* host.session.rpc.host.issueActivationCode({ customerId })
        yield* host.session.rpc.host.deleteCustomer({ customerId })
        expect((yield* failure(activate(server, code)))._tag).toBe("ActivationCodeInvalid")
      }))
  })
})
