/**
 * Two practices on one real server: a host reaches only its own customers, a customer only its own host. Whatever
 * else is asked gets a typed error, and the other practice's accounts are left as they were.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import { type CustomerDevice, customerDevice, failure, type HostDevice, hostDevice, newCustomer, next, received } from "./story.js"

class Practices extends Context.Tag("test/Practices")<Practices, {
  readonly a: { readonly host: HostDevice; readonly customer: CustomerDevice }
  readonly b: { readonly host: HostDevice; readonly customer: CustomerDevice }
}>() {}

const PracticesLive = Layer.scoped(
  Practices,
  Effect.gen(function*() {
    const server = yield* Server
    const practice = (name: string) =>
      Effect.gen(function*() {
        const host = yield* hostDevice(server)
        const customer = yield* customerDevice(server, host, { name })
        yield* Effect.all([host.session.setReady(true), customer.session.setReady(true)])
        return { host, customer }
      })
    return { a: yield* practice("Anna A"), b: yield* practice("Bert B") }
  }).pipe(Effect.orDie)
)

const Fixture = PracticesLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(), Sdk.NodeWebSocket)))

describe("authorisation", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("a host's customer list holds its own customers only", () =>
      Effect.gen(function*() {
        const { a, b } = yield* Practices
        const listA = yield* a.host.session.rpc.host.listCustomers()
        const listB = yield* b.host.session.rpc.host.listCustomers()
        expect(listA.map((c) => c.customerId)).toEqual([a.customer.customerId])
        expect(listB.map((c) => c.customerId)).toEqual([b.customer.customerId])
      }))

    it.scoped("host A cannot issue a code for, revoke or delete host B's customer: CustomerNotFound, B's customer unharmed", () =>
      Effect.gen(function*() {
        const { a, b } = yield* Practices
        const rpc = a.host.session.rpc.host
        const customerId = b.customer.customerId
        expect((yield* failure(rpc.issueActivationCode({ customerId })))._tag).toBe("CustomerNotFound")
        expect((yield* failure(rpc.revokeActivation({ customerId })))._tag).toBe("CustomerNotFound")
        expect((yield* failure(rpc.deleteCustomer({ customerId })))._tag).toBe("CustomerNotFound")
        const [summary] = yield* b.host.session.rpc.host.listCustomers()
        expect(summary).toMatchObject({ customerId, status: "active", online: true })
        // And B's customer is still connected and can reach its host.
        expect((yield* b.customer.session.rpc.customer.host()).hostId).toBe(b.host.hostId)
      }))

    it.scoped("host A cannot call host B's customer, nor host B: NotPermitted, and nothing rings", () =>
      Effect.gen(function*() {
        const { a, b } = yield* Practices
        expect((yield* failure(a.host.session.rpc.call.invite({ peer: b.customer.customerId })))._tag).toBe("NotPermitted")
        expect((yield* failure(a.host.session.rpc.call.invite({ peer: b.host.hostId })))._tag).toBe("NotPermitted")
        // An id nobody has: the same answer, so ids cannot be probed.
        const { customerId: unknown } = yield* newCustomer(b.host)
        yield* b.host.session.rpc.host.deleteCustomer({ customerId: unknown })
        expect((yield* failure(a.host.session.rpc.call.invite({ peer: unknown })))._tag).toBe("NotPermitted")
        yield* Effect.sleep("300 millis")
        for (const session of [b.customer.session, b.host.session]) {
          expect((yield* received(session)).filter((e) => e._tag === "IncomingCall")).toEqual([])
        }
      }))

    it.scoped("a customer of host A cannot call host B, nor another customer: NotPermitted; its own host it can", () =>
      Effect.gen(function*() {
        const { a, b } = yield* Practices
        const call = a.customer.session.rpc.call
        expect((yield* failure(call.invite({ peer: b.host.hostId })))._tag).toBe("NotPermitted")
        expect((yield* failure(call.invite({ peer: b.customer.customerId })))._tag).toBe("NotPermitted")
        yield* Effect.sleep("300 millis")
        expect((yield* received(b.host.session)).filter((e) => e._tag === "IncomingCall")).toEqual([])
        const { callId } = yield* call.invite({ peer: a.host.hostId })
        const ring = yield* next(a.host.session, "IncomingCall", (e) => e.callId === callId)
        expect(ring.from).toBe(a.customer.customerId)
        yield* call.cancel({ callId })
        yield* next(a.host.session, "CallEnded", (e) => e.callId === callId)
      }))

    it.scoped("a call of practice A cannot be answered, signalled into or ended from practice B: CallNotFound", () =>
      Effect.gen(function*() {
        const { a, b } = yield* Practices
        const { callId } = yield* a.host.session.rpc.call.invite({ peer: a.customer.customerId })
        yield* next(a.customer.session, "IncomingCall", (e) => e.callId === callId)
        for (const intruder of [b.host.session, b.customer.session]) {
          expect((yield* failure(intruder.rpc.call.accept({ callId })))._tag).toBe("CallNotFound")
          expect((yield* failure(intruder.rpc.call.signal({ callId, payload: new Uint8Array([1]) })))._tag).toBe("CallNotFound")
          expect((yield* failure(intruder.rpc.call.hangUp({ callId })))._tag).toBe("CallNotFound")
          expect((yield* failure(intruder.rpc.call.decline({ callId, reason: "declined" })))._tag).toBe("CallNotFound")
          expect((yield* failure(intruder.rpc.call.cancel({ callId })))._tag).toBe("CallNotFound")
        }
        // The call itself is untouched: the customer answers it.
        yield* a.customer.session.rpc.call.accept({ callId })
        yield* next(a.host.session, "CallAccepted", (e) => e.callId === callId)
        yield* a.host.session.rpc.call.hangUp({ callId })
        const ended = yield* next(a.customer.session, "CallEnded", (e) => e.callId === callId)
        expect(ended.reason).toBe("hung-up")
      }))
  })
})
