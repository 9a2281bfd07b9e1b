/**
 * Presence and calls between a host and its customers through a real server, as the apps see them: who is online,
 * the ring, the answer, signalling payloads passed through untouched, and every way a call ends. A call rings for
 * 3 s here (TESSERA_RING_SECONDS), long enough for the answering tests on a busy machine, short enough to wait out.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { Enrollment } from "../../src/actors/Enrollment.js"
import { MAX_SIGNAL_BYTES } from "../../src/domain/liveEvents.js"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import {
  asOperator,
  type CustomerDevice,
  customerDevice,
  enrollDevice,
  failure,
  type HostDevice,
  hostDevice,
  next,
  received,
  signIn
} from "./story.js"

const RING_SECONDS = 3

class Cast extends Context.Tag("test/Cast")<Cast, {
  readonly host: HostDevice
  readonly erika: CustomerDevice
  readonly max: CustomerDevice
  /** Another practice, which must never hear of the first one's customers. */
  readonly otherHost: HostDevice
}>() {}

const CastLive = Layer.scoped(
  Cast,
  Effect.gen(function*() {
    const server = yield* Server
    const host = yield* hostDevice(server)
    const erika = yield* customerDevice(server, host)
    const max = yield* customerDevice(server, host, { name: "Max Muster", customerNumber: "K-4712" })
    const otherHost = yield* hostDevice(server)
    return { host, erika, max, otherHost }
  }).pipe(Effect.orDie)
)

const Fixture = CastLive.pipe(
  Layer.provideMerge(Layer.merge(ServerLive({ TESSERA_RING_SECONDS: String(RING_SECONDS) }), Sdk.NodeWebSocket))
)

/** Everyone's app open and ready, as at the start of each call test. */
const allReady = Effect.gen(function*() {
  const { erika, host, max } = yield* Cast
  yield* Effect.all([host.session.setReady(true), erika.session.setReady(true), max.session.setReady(true)])
})

/** The host calls `customer`, the customer's app rings and answers. */
const connectedCall = (host: HostDevice, customer: CustomerDevice) =>
  Effect.gen(function*() {
    const { callId } = yield* host.session.rpc.call.invite({ peer: customer.customerId })
    const ring = yield* next(customer.session, "IncomingCall", (e) => e.callId === callId)
    expect(ring.from).toBe(host.hostId)
    yield* customer.session.rpc.call.accept({ callId })
    yield* next(host.session, "CallAccepted", (e) => e.callId === callId)
    return callId
  })

const presenceOf = (account: string) => (e: { readonly account: string }) => e.account === account

describe("presence and calls", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("the host sees a customer come online and go offline; the customer sees the host; the other practice sees nothing", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { erika, host, otherHost } = yield* Cast
        // On signing in, the customer's app was told its host is not there yet.
        expect((yield* next(erika.session, "PresenceChanged", presenceOf(host.hostId))).online).toBe(false)
        yield* host.session.setReady(true)
        expect((yield* next(erika.session, "PresenceChanged", presenceOf(host.hostId))).online).toBe(true)

        yield* erika.session.setReady(true)
        expect((yield* next(host.session, "PresenceChanged", presenceOf(erika.customerId))).online).toBe(true)
        const [listed] = (yield* host.session.rpc.host.listCustomers()).filter((c) => c.customerId === erika.customerId)
        expect(listed?.online).toBe(true)
        yield* erika.session.setReady(false)
        expect((yield* next(host.session, "PresenceChanged", presenceOf(erika.customerId))).online).toBe(false)

        // The customer's app opens on a second connection and then closes: online, then offline again.
        const app = yield* Scope.make()
        const second = yield* signIn(server, erika).pipe(Scope.extend(app))
        yield* second.setReady(true)
        expect((yield* next(host.session, "PresenceChanged", presenceOf(erika.customerId))).online).toBe(true)
        yield* Scope.close(app, Exit.void)
        expect((yield* next(host.session, "PresenceChanged", presenceOf(erika.customerId))).online).toBe(false)

        yield* host.session.setReady(false)
        expect((yield* next(erika.session, "PresenceChanged", presenceOf(host.hostId))).online).toBe(false)

        const heardOf = (yield* received(otherHost.session)).filter((e) => e._tag === "PresenceChanged")
        expect(heardOf).toEqual([])
      }))

    it.scoped("a host device that signs in later is told at once which customers are online", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { erika, host } = yield* Cast
        yield* erika.session.setReady(true)
        yield* next(host.session, "PresenceChanged", (e) => e.account === erika.customerId && e.online)
        const console = yield* signIn(server, host)
        const seen = yield* next(console, "PresenceChanged", presenceOf(erika.customerId))
        expect(seen.online).toBe(true)
      }))

    it.scoped("a call: ring, answer, signalling both ways byte for byte, hang up", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        const callId = yield* connectedCall(host, erika)
        const offer = new Uint8Array(randomBytes(MAX_SIGNAL_BYTES))
        const answer = new Uint8Array([0, 255, 1, 254, 0, 0])
        yield* host.session.rpc.call.signal({ callId, payload: offer })
        yield* erika.session.rpc.call.signal({ callId, payload: answer })
        const atErika = yield* next(erika.session, "SignalReceived", (e) => e.callId === callId)
        const atHost = yield* next(host.session, "SignalReceived", (e) => e.callId === callId)
        expect(Buffer.from(atErika.payload).equals(Buffer.from(offer))).toBe(true)
        expect(Array.from(atHost.payload)).toEqual(Array.from(answer))
        yield* erika.session.rpc.call.hangUp({ callId })
        expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe("hung-up")
        // The one who hung up hears nothing back, and the call is gone for both.
        yield* Effect.sleep("200 millis")
        expect((yield* received(erika.session)).filter((e) => e._tag === "CallEnded" && e.callId === callId)).toEqual([])
        expect((yield* failure(host.session.rpc.call.signal({ callId, payload: answer })))._tag).toBe("CallNotFound")
      }))

    it.scoped("the customer declines (CallEnded declined), or declines as busy (CallEnded busy)", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        for (const reason of ["declined", "busy"] as const) {
          const { callId } = yield* host.session.rpc.call.invite({ peer: erika.customerId })
          yield* next(erika.session, "IncomingCall", (e) => e.callId === callId)
          yield* erika.session.rpc.call.decline({ callId, reason })
          expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe(reason)
        }
      }))

    it.scoped("the caller cancels before an answer: the ring stops (CallEnded cancelled); answering then is too late", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        const { callId } = yield* erika.session.rpc.call.invite({ peer: host.hostId })
        expect((yield* next(host.session, "IncomingCall", (e) => e.callId === callId)).from).toBe(erika.customerId)
        yield* erika.session.rpc.call.cancel({ callId })
        expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe("cancelled")
        expect((yield* failure(host.session.rpc.call.accept({ callId })))._tag).toBe("CallNotFound")
      }))

    it.scoped("while the host is in a call, another customer calling gets PeerBusy, and the host cannot start a second call", () =>
      Effect.gen(function*() {
        const { erika, host, max } = yield* Cast
        yield* allReady
        const callId = yield* connectedCall(host, erika)
        expect((yield* failure(max.session.rpc.call.invite({ peer: host.hostId })))._tag).toBe("PeerBusy")
        expect((yield* failure(host.session.rpc.call.invite({ peer: max.customerId })))._tag).toBe("PeerBusy")
        yield* host.session.rpc.call.hangUp({ callId })
        yield* next(erika.session, "CallEnded", (e) => e.callId === callId)
        // Once it has ended, Max gets through.
        const second = yield* max.session.rpc.call.invite({ peer: host.hostId })
        yield* next(host.session, "IncomingCall", (e) => e.callId === second.callId)
        yield* max.session.rpc.call.cancel(second)
        yield* next(host.session, "CallEnded", (e) => e.callId === second.callId)
      }))

    it.scoped("nobody answers: after the ring time both sides get CallEnded no-answer", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        const started = Date.now()
        const { callId } = yield* host.session.rpc.call.invite({ peer: erika.customerId })
        yield* next(erika.session, "IncomingCall", (e) => e.callId === callId)
        const atHost = yield* next(host.session, "CallEnded", (e) => e.callId === callId, RING_SECONDS + 10)
        const atErika = yield* next(erika.session, "CallEnded", (e) => e.callId === callId)
        expect([atHost.reason, atErika.reason]).toEqual(["no-answer", "no-answer"])
        expect(Date.now() - started).toBeGreaterThanOrEqual(RING_SECONDS * 1000 - 100)
      }))

    it.scoped("a call rings on every ready device of the host; answering on one ends it on the others (answered-elsewhere)", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { erika, host } = yield* Cast
        yield* allReady
        // The practice's second device, enrolled with a fresh code from the operator.
        const { code } = yield* asOperator(server, Effect.flatMap(Enrollment, (e) => e.issueEnrollmentCode(host.hostId)))
        const store = Sdk.memoryKeyStore()
        const desk = yield* signIn(server, { credentials: yield* enrollDevice(server, code, store), store })
        yield* desk.setReady(true)
        const { callId } = yield* erika.session.rpc.call.invite({ peer: host.hostId })
        yield* next(host.session, "IncomingCall", (e) => e.callId === callId)
        yield* next(desk, "IncomingCall", (e) => e.callId === callId)
        yield* desk.rpc.call.accept({ callId })
        expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe("answered-elsewhere")
        yield* next(erika.session, "CallAccepted", (e) => e.callId === callId)
        expect((yield* failure(host.session.rpc.call.accept({ callId })))._tag).toBe("CallNotFound")
        yield* desk.rpc.call.signal({ callId, payload: new Uint8Array([7]) })
        expect(Array.from((yield* next(erika.session, "SignalReceived", (e) => e.callId === callId)).payload)).toEqual([7])
        yield* erika.session.rpc.call.hangUp({ callId })
        expect((yield* next(desk, "CallEnded", (e) => e.callId === callId)).reason).toBe("hung-up")
      }))

    it.scoped("a customer with no app open cannot be called: PeerUnavailable", () =>
      Effect.gen(function*() {
        const { host, max } = yield* Cast
        yield* allReady
        yield* max.session.setReady(false)
        expect((yield* failure(host.session.rpc.call.invite({ peer: max.customerId })))._tag).toBe("PeerUnavailable")
      }))

    it.scoped("the caller's connection breaks: the callee's call ends as disconnected, ringing or answered", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { erika, host } = yield* Cast
        yield* allReady
        for (const answered of [false, true]) {
          const app = yield* Scope.make()
          const caller = yield* signIn(server, erika).pipe(Scope.extend(app))
          yield* caller.setReady(true)
          const { callId } = yield* caller.rpc.call.invite({ peer: host.hostId })
          yield* next(host.session, "IncomingCall", (e) => e.callId === callId)
          if (answered) {
            yield* host.session.rpc.call.accept({ callId })
            yield* next(caller, "CallAccepted", (e) => e.callId === callId)
          }
          yield* Scope.close(app, Exit.void)
          expect((yield* next(host.session, "CallEnded", (e) => e.callId === callId)).reason).toBe("disconnected")
        }
      }))

    it.scoped("signalling before the call is answered: CallStateInvalid, for either side", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        const { callId } = yield* host.session.rpc.call.invite({ peer: erika.customerId })
        yield* next(erika.session, "IncomingCall", (e) => e.callId === callId)
        const payload = new Uint8Array([1, 2, 3])
        expect((yield* failure(host.session.rpc.call.signal({ callId, payload })))._tag).toBe("CallStateInvalid")
        expect((yield* failure(erika.session.rpc.call.signal({ callId, payload })))._tag).toBe("CallStateInvalid")
        // Answering twice or accepting one's own call is just as wrong.
        expect((yield* failure(host.session.rpc.call.accept({ callId })))._tag).toBe("CallStateInvalid")
        yield* host.session.rpc.call.cancel({ callId })
        yield* next(erika.session, "CallEnded", (e) => e.callId === callId)
      }))

    // The server checks the size itself, so a payload out of bounds gets a typed error (CallSecurity refuses to
    // send one with SignalTooLarge before that).
    it.scoped("an oversized or empty signalling payload is refused with InvalidRequest and the call goes on", () =>
      Effect.gen(function*() {
        const { erika, host } = yield* Cast
        yield* allReady
        const callId = yield* connectedCall(host, erika)
        const refused = yield* Effect.flip(host.session.rpc.call.signal({ callId, payload: new Uint8Array(MAX_SIGNAL_BYTES + 1) }))
        expect(refused._tag).toBe("InvalidRequest")
        expect((refused as { reason?: string }).reason).toContain(`a signalling payload is 1 to ${MAX_SIGNAL_BYTES} bytes`)
        const empty = yield* Effect.flip(host.session.rpc.call.signal({ callId, payload: new Uint8Array(0) }))
        expect(empty._tag).toBe("InvalidRequest")
        yield* host.session.rpc.call.signal({ callId, payload: new Uint8Array([42]) })
        expect(Array.from((yield* next(erika.session, "SignalReceived", (e) => e.callId === callId)).payload)).toEqual([42])
        yield* host.session.rpc.call.hangUp({ callId })
        yield* next(erika.session, "CallEnded", (e) => e.callId === callId)
      }))
  })
})
