/**
 * Secured calls between a host device and a customer's app, both through the real SDK, over a real server process
 * on real Postgres: the handshake over `call.signal`, the safety code, SDP and ICE candidates sealed both ways, what
 * the server relays (taken from the receiving device's raw SignalReceived events, the exact bytes the server sent),
 * a server acting as man in the middle, and relayed payloads that were tampered with, replayed or made up.
 */
import { describe, expect, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Either, Layer, Schema } from "effect"
import { Enrollment } from "../../src/actors/Enrollment.js"
import { respondToOffer } from "../../src/crypto/handshake.js"
import { generateIdentityKeyPair, identityFingerprint, type IdentityKeyPair } from "../../src/crypto/identity.js"
import type { CallId, CustomerId, HostId } from "../../src/domain/ids.js"
import { MAX_SIGNAL_BYTES, type SignalReceived } from "../../src/domain/liveEvents.js"
import { decodeCallSignal, encodeCallSignal } from "../../src/sdk/callSignal.js"
import * as Sdk from "../../src/sdk/node.js"
import { AccountsLive } from "../../src/server/Accounts.js"
import { readServerSettings } from "../../src/server/Config.js"
import { Server, ServerLive, type TestServer } from "../support/server.js"

// What WebRTC hands an app: an SDP offer/answer and trickled ICE candidates (documentation addresses, RFC 5737).
const SDP_OFFER = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 192.0.2.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "a=msid-semantic: WMS stream",
  "m=audio 54321 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 192.0.2.1",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0",
  "a=ice-ufrag:F7gI",
  "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
  "a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
  "a=setup:actpass",
  "a=mid:0",
  "a=sendrecv",
  "a=rtpmap:111 opus/48000/2",
  "m=video 54321 UDP/TLS/RTP/SAVPF 96",
  "c=IN IP4 192.0.2.1",
  "a=mid:1",
  "a=rtpmap:96 VP8/90000",
  ""
].join("\r\n")
const SDP_ANSWER = SDP_OFFER.replace("a=setup:actpass", "a=setup:active").replaceAll("192.0.2.1", "198.51.100.7")
const CANDIDATE = { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host", sdpMid: "0", sdpMLineIndex: 0 }
const CANDIDATE_BACK = {
  candidate: "candidate:2 1 udp 1686052607 198.51.100.7 61000 typ srflx raddr 10.0.0.5 rport 61000",
  sdpMid: "0",
  sdpMLineIndex: 0
}
/**
 * Nothing of this may appear in what the server relays. (Random bytes contain a given 3-byte string such as "v=0"
 * with a chance of about 6e-8 per position: a few times in 10^4 runs over the ~6 KB a call relays here.)
 */
const CLEARTEXT = ["v=0", "candidate", "a=fingerprint", "192.0.2.1", "198.51.100.7", "IN IP4", "sha-256", "ice-pwd", "AB:CD"]

/** The messages of these tests: what an app built on WebRTC exchanges. */
const Signalling = Schema.Union(
  Schema.Struct({ type: Schema.Literal("offer", "answer"), sdp: Schema.String }),
  Schema.Struct({ type: Schema.Literal("candidate"), candidate: Schema.String, sdpMid: Schema.String, sdpMLineIndex: Schema.Number }),
  Schema.Struct({ type: Schema.Literal("note"), text: Schema.String })
)

interface Practice {
  readonly hostId: HostId
  readonly customerId: CustomerId
  readonly host: Sdk.DeviceSession
  readonly customer: Sdk.DeviceSession
  /** A key pair the "server" holds, to stand in for the host. */
  readonly intruder: IdentityKeyPair
}
class PracticeTag extends Context.Tag("test/Practice")<PracticeTag, Practice>() {}

/** As `tessera host enroll` does: the server's account layer on the same database and master key. */
const enrollHost = (server: TestServer) =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(readServerSettings)
    return yield* Effect.flatMap(Enrollment, (e) => e.enrollHost()).pipe(
      Effect.provide(AccountsLive(settings, { migrate: false, maxConnections: 1 }))
    )
  }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(server.env)))), Effect.orDie)

/** One practice with one host device and one activated customer, both signed in and ready, for the whole file. */
const PracticeLive = Layer.scoped(
  PracticeTag,
  Effect.gen(function*() {
    const server = yield* Server
    const { code, hostId } = yield* enrollHost(server)
    const hostStore = Sdk.memoryKeyStore()
    const hostCredentials = yield* Sdk.enrollHostDevice(server.url, code, hostStore, { extractableKey: true })
    const host = yield* Sdk.signIn(hostCredentials, hostStore, { url: server.url })
    const sealedProfile = yield* Effect.promise(() =>
      Sdk.sealProfile(hostCredentials.profileKey!, { name: "Erika Mustermann", customerNumber: "K-4711" })
    )
    const { customerId } = yield* host.rpc.host.createCustomer({ sealedProfile })
    const issued = yield* host.rpc.host.issueActivationCode({ customerId })
    const customerStore = Sdk.memoryKeyStore()
    const customerCredentials = yield* Sdk.activateCustomer(server.url, issued.code, customerStore, { extractableKey: true })
    const customer = yield* Sdk.signIn(customerCredentials, customerStore, { url: server.url })
    yield* host.setReady(true)
    yield* customer.setReady(true)
    const intruder = yield* Effect.promise(() => generateIdentityKeyPair({ extractable: false }))
    return { hostId, customerId, host, customer, intruder }
  }).pipe(Effect.orDie)
)

const Fixture = PracticeLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(), Sdk.NodeWebSocket)))

const within = <A, E, R>(effect: Effect.Effect<A, E, R>, seconds = 20) =>
  Effect.timeoutFail(effect, { duration: `${seconds} seconds`, onTimeout: () => new Error(`no result within ${seconds} s`) })

/** Rings `to` from `from` and has `to` accept; returns the call id. */
const ringAndAccept = (from: Sdk.DeviceSession, to: Sdk.DeviceSession, peer: HostId | CustomerId) =>
  Effect.gen(function*() {
    const { callId } = yield* from.rpc.call.invite({ peer })
    yield* within(to.take((e): e is Extract<typeof e, { _tag: "IncomingCall" }> => e._tag === "IncomingCall" && e.callId === callId))
    yield* to.rpc.call.accept({ callId })
    return callId
  })

/** The raw payloads the server relayed to `device` for the call, in order, exactly as they arrived. */
const relayedTo = (device: Sdk.DeviceSession, callId: CallId) =>
  Effect.map(device.received.get, (events) =>
    events.filter((e): e is SignalReceived => e._tag === "SignalReceived" && e.callId === callId).map((e) => e.payload))

/** The host calls the customer and both secure the call with the keys they learnt at enrollment/activation. */
const securedCall = Effect.gen(function*() {
  const { host, customer, customerId, hostId } = yield* PracticeTag
  const callId = yield* ringAndAccept(host, customer, customerId)
  const [hostKeys, customerKeys] = yield* Effect.all([
    Sdk.peerIdentityKeys(host, customerId),
    Sdk.peerIdentityKeys(customer, hostId)
  ])
  const [atHost, atCustomer] = yield* within(Effect.all([
    Sdk.secureCall(host, { callId, role: "caller", peerIdentityKeys: hostKeys, messages: Signalling }),
    Sdk.secureCall(customer, { callId, role: "callee", peerIdentityKeys: customerKeys, messages: Signalling })
  ], { concurrency: 2 }))
  return { callId, atHost, atCustomer }
})

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1")

describe("secured calls", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "240 seconds" })((it) => {
    it.scoped("host and customer agree on keys over the real server; SDP and ICE pass both ways, the server relays none of it", () =>
      Effect.gen(function*() {
        const { host, customer } = yield* PracticeTag
        const { callId, atHost, atCustomer } = yield* securedCall

        expect(atHost.safetyCode).toMatch(/^\d{5}( \d{5}){4}$/)
        expect(atCustomer.safetyCode).toBe(atHost.safetyCode)

        yield* atHost.send({ type: "offer", sdp: SDP_OFFER })
        yield* atHost.send({ type: "candidate", ...CANDIDATE })
        expect(yield* within(atCustomer.receive)).toEqual({ type: "offer", sdp: SDP_OFFER })
        expect(yield* within(atCustomer.receive)).toEqual({ type: "candidate", ...CANDIDATE })
        yield* atCustomer.send({ type: "answer", sdp: SDP_ANSWER })
        yield* atCustomer.send({ type: "candidate", ...CANDIDATE_BACK })
        expect(yield* within(atHost.receive)).toEqual({ type: "answer", sdp: SDP_ANSWER })
        expect(yield* within(atHost.receive)).toEqual({ type: "candidate", ...CANDIDATE_BACK })

        const toCustomer = yield* relayedTo(customer, callId)
        const toHost = yield* relayedTo(host, callId)
        // Handshake: offer and confirm one way, hello and answer the other; then two sealed records each way.
        expect(toCustomer.map((p) => decodeCallSignal(p)?.type)).toEqual(["offer", "confirm", "sealed", "sealed"])
        expect(toHost.map((p) => decodeCallSignal(p)?.type)).toEqual(["hello", "answer", "sealed", "sealed"])
        for (const payload of [...toCustomer, ...toHost]) {
          const text = latin1(payload)
          for (const needle of CLEARTEXT) expect(text).not.toContain(needle)
          expect(text.toLowerCase()).not.toContain("candidate")
        }
        // The sealed records look random: about 95/256 of random bytes are printable ASCII, SDP is nearly all.
        const sealed = [...toCustomer, ...toHost].filter((p) => decodeCallSignal(p)?.type === "sealed")
        const bytes = Buffer.concat(sealed.map((p) => p.subarray(10)))
        expect(bytes.length).toBeGreaterThan(2 * SDP_OFFER.length)
        const printable = bytes.filter((b) => b >= 0x20 && b < 0x7f).length / bytes.length
        expect(printable).toBeLessThan(0.5)
        expect(printable).toBeGreaterThan(0.25)
      }))

    it.scoped("the customer calls the host too, trusting the host keys of its config and of customer.host", () =>
      Effect.gen(function*() {
        const { host, customer, customerId, hostId } = yield* PracticeTag
        const callId = yield* ringAndAccept(customer, host, hostId)
        const customerKeys = yield* Sdk.peerIdentityKeys(customer, hostId, { current: true })
        expect(customerKeys).toEqual(customer.credentials.config.body.kind === "customer" ? customer.credentials.config.body.hostIdentityKeys : [])
        const [atCustomer, atHost] = yield* within(Effect.all([
          Sdk.secureCall(customer, { callId, role: "caller", peerIdentityKeys: customerKeys }),
          Sdk.secureCall(host, { callId, role: "callee", peerIdentityKeys: yield* Sdk.peerIdentityKeys(host, customerId) })
        ], { concurrency: 2 }))
        expect(atHost.safetyCode).toBe(atCustomer.safetyCode)
        yield* atCustomer.send({ type: "offer", sdp: SDP_OFFER })
        expect(yield* within(atHost.receive)).toEqual({ type: "offer", sdp: SDP_OFFER })
        yield* atHost.send([1, "two", { three: null }])
        expect(yield* within(atCustomer.receive)).toEqual([1, "two", { three: null }])
      }))

    it.scoped("each call has its own keys and safety code", () =>
      Effect.gen(function*() {
        const first = yield* Effect.scoped(Effect.map(securedCall, ({ atHost }) => atHost.safetyCode))
        const second = yield* Effect.scoped(Effect.map(securedCall, ({ atHost }) => atHost.safetyCode))
        expect(second).not.toBe(first)
      }))

    it.scoped("man in the middle: a customer given another host key refuses the host (UnknownPeerKey), hangs up, sends nothing", () =>
      Effect.gen(function*() {
        const { host, customer, customerId, intruder } = yield* PracticeTag
        const callId = yield* ringAndAccept(host, customer, customerId)
        const [atHost, atCustomer] = yield* within(Effect.all([
          Effect.either(Sdk.secureCall(host, {
            callId,
            role: "caller",
            peerIdentityKeys: yield* Sdk.peerIdentityKeys(host, customerId),
            messages: Signalling
          })),
          Effect.either(Sdk.secureCall(customer, {
            callId,
            role: "callee",
            peerIdentityKeys: [intruder.publicKeySpki],
            messages: Signalling
          }))
        ], { concurrency: 2 }))
        expect(Either.isLeft(atCustomer) && atCustomer.left._tag).toBe("UnknownPeerKey")
        // The customer hung up: the host learns it as the end of the call, with no session to send anything on.
        expect(Either.isLeft(atHost) && atHost.left).toEqual(new Sdk.SecureCallEnded({ reason: "hung-up" }))
        // Fail closed: the customer sent its hello and nothing else, the host its offer and nothing else.
        expect((yield* relayedTo(host, callId)).map((p) => decodeCallSignal(p)?.type)).toEqual(["hello"])
        expect((yield* relayedTo(customer, callId)).map((p) => decodeCallSignal(p)?.type)).toEqual(["offer"])
      }))

    it.scoped("man in the middle, the other way: the customer calls with another host key and refuses the answering host", () =>
      Effect.gen(function*() {
        const { host, customer, customerId, hostId, intruder } = yield* PracticeTag
        const callId = yield* ringAndAccept(customer, host, hostId)
        const [atCustomer, atHost] = yield* within(Effect.all([
          Effect.either(Sdk.secureCall(customer, { callId, role: "caller", peerIdentityKeys: [intruder.publicKeySpki] })),
          Effect.either(Sdk.secureCall(host, {
            callId,
            role: "callee",
            peerIdentityKeys: yield* Sdk.peerIdentityKeys(host, customerId)
          }))
        ], { concurrency: 2 }))
        expect(Either.isLeft(atCustomer) && atCustomer.left._tag).toBe("UnknownPeerKey")
        expect(Either.isLeft(atHost) && atHost.left).toEqual(new Sdk.SecureCallEnded({ reason: "hung-up" }))
        // The customer never made an offer: its side of the call carried nothing at all.
        expect(yield* relayedTo(host, callId)).toEqual([])
      }))

    it.scoped("man in the middle with its own key exchange, posing as the host: BadSignature, the call is hung up", () =>
      Effect.gen(function*() {
        const { host, customer, hostId, intruder } = yield* PracticeTag
        const callId = yield* ringAndAccept(customer, host, hostId)
        // The host's device does not take part: the server speaks for it, names the host's real key and answers
        // the customer's offer with its own Diffie-Hellman value, signed with its own key.
        const hostSpki = host.credentials.keys.publicKeySpki
        const hostFingerprint = yield* Effect.promise(() => identityFingerprint(hostSpki))
        const attack = Effect.gen(function*() {
          yield* host.rpc.call.signal({ callId, payload: encodeCallSignal({ type: "hello", fingerprint: hostFingerprint }) })
          const offerEvent = yield* within(host.take((e): e is SignalReceived => e._tag === "SignalReceived" && e.callId === callId))
          const offer = decodeCallSignal(offerEvent.payload)
          if (offer?.type !== "offer") return yield* Effect.die("expected an offer")
          const customerFingerprint = yield* Effect.promise(() => identityFingerprint(customer.credentials.keys.publicKeySpki))
          const { answer } = yield* Effect.promise(() =>
            respondToOffer({
              callId,
              selfId: `host:${hostFingerprint}`,
              selfIdentity: intruder,
              peerId: `customer:${customerFingerprint}`,
              peerPublicKeySpki: customer.credentials.keys.publicKeySpki,
              offer: offer.message
            })
          )
          yield* host.rpc.call.signal({ callId, payload: encodeCallSignal({ type: "answer", message: answer }) })
        })
        const [, atCustomer] = yield* within(Effect.all([
          attack,
          Effect.either(Sdk.secureCall(customer, {
            callId,
            role: "caller",
            peerIdentityKeys: yield* Sdk.peerIdentityKeys(customer, hostId)
          }))
        ], { concurrency: 2 }))
        expect(Either.isLeft(atCustomer) && atCustomer.left).toEqual(expect.objectContaining({ _tag: "BadSignature", signer: "callee" }))
        const ended = yield* within(host.take((e): e is Extract<typeof e, { _tag: "CallEnded" }> => e._tag === "CallEnded" && e.callId === callId))
        expect(ended.reason).toBe("hung-up")
        // The customer's offer went out, its confirm never did.
        expect((yield* relayedTo(host, callId)).map((p) => decodeCallSignal(p)?.type)).toEqual(["offer"])
      }))

    it.scoped("relayed payloads that were tampered with, replayed or made up are dropped with SignalRejected; the call goes on", () =>
      Effect.gen(function*() {
        const { host, customer } = yield* PracticeTag
        const { callId, atHost, atCustomer } = yield* securedCall
        yield* atHost.send({ type: "offer", sdp: SDP_OFFER })
        expect(yield* within(atCustomer.receive)).toEqual({ type: "offer", sdp: SDP_OFFER })
        const [offer, confirm, genuine] = yield* relayedTo(customer, callId)

        // What a server in the middle could send from the host's side of the call instead of the host's next record.
        // Copies: a relayed payload is a Buffer, whose slice() is a view.
        const flipped = Uint8Array.from(genuine!)
        flipped.set([0, 0, 0, 0, 0, 0, 0, 1], 2) // the sequence number the customer expects next
        flipped[100]! ^= 0x04 // one bit of the ciphertext
        const relabelled = Uint8Array.from(genuine!)
        relabelled.set([0, 0, 0, 0, 0, 0, 0, 1], 2)
        const injected = [flipped, relabelled, genuine!, offer!, confirm!, new Uint8Array([0x42, 1, 2, 3]), Uint8Array.of(5, 1)]
        for (const payload of injected) yield* host.rpc.call.signal({ callId, payload })
        const rejected = []
        for (let i = 0; i < injected.length; i++) rejected.push(yield* Effect.flip(within(atCustomer.receive)))
        expect(rejected.map((e) => e instanceof Sdk.SignalRejected ? e.reason : e)).toEqual([
          "authentication-failed",
          "authentication-failed",
          "out-of-order",
          "unexpected",
          "unexpected",
          "malformed",
          "malformed"
        ])

        // None of it moved the customer's expected sequence on: the host's next real message opens.
        yield* atHost.send({ type: "candidate", ...CANDIDATE })
        expect(yield* within(atCustomer.receive)).toEqual({ type: "candidate", ...CANDIDATE })
        // The same holds the other way.
        yield* customer.rpc.call.signal({ callId, payload: Uint8Array.of(5, 1, 0, 0, 0, 0, 0, 0, 0, 0, ...new Uint8Array(32)) })
        expect(yield* Effect.flip(within(atHost.receive))).toEqual(new Sdk.SignalRejected({ reason: "authentication-failed" }))
        yield* atCustomer.send({ type: "answer", sdp: SDP_ANSWER })
        expect(yield* within(atHost.receive)).toEqual({ type: "answer", sdp: SDP_ANSWER })
      }))

    it.scoped("a genuine record that is not a valid message is dropped too; an oversized message is refused before sealing", () =>
      Effect.gen(function*() {
        const { host, customer, customerId, hostId } = yield* PracticeTag
        const callId = yield* ringAndAccept(host, customer, customerId)
        const [atHost, atCustomer] = yield* within(Effect.all([
          // The host sends anything; the customer accepts only the Signalling messages.
          Sdk.secureCall(host, { callId, role: "caller", peerIdentityKeys: yield* Sdk.peerIdentityKeys(host, customerId) }),
          Sdk.secureCall(customer, {
            callId,
            role: "callee",
            peerIdentityKeys: yield* Sdk.peerIdentityKeys(customer, hostId),
            messages: Signalling
          })
        ], { concurrency: 2 }))
        yield* atHost.send({ type: "offer", sdp: 42 })
        expect(yield* Effect.flip(within(atCustomer.receive))).toEqual(new Sdk.SignalRejected({ reason: "invalid-message" }))
        const tooLarge = yield* Effect.flip(atHost.send({ type: "note", text: "x".repeat(MAX_SIGNAL_BYTES) }))
        expect(tooLarge._tag).toBe("SignalTooLarge")
        yield* atHost.send({ type: "note", text: "still in order" })
        expect(yield* within(atCustomer.receive)).toEqual({ type: "note", text: "still in order" })
      }))

    it.scoped("SFrame keys match across the call; hanging up ends it for the peer and destroys every key on both sides", () =>
      Effect.gen(function*() {
        const { atHost, atCustomer } = yield* securedCall
        const hostSender = yield* atHost.media.createSender
        const customerReceiver = yield* atCustomer.media.createReceiver()
        const frame = new Uint8Array(1200).fill(7)
        const protectedFrame = yield* Effect.promise(() => hostSender.encrypt(frame))
        expect(yield* Effect.promise(() => customerReceiver.decrypt(protectedFrame))).toEqual(frame)

        yield* atHost.hangUp
        expect(yield* within(atCustomer.ended)).toEqual(new Sdk.SecureCallEnded({ reason: "hung-up" }))
        expect(yield* Effect.flip(atCustomer.receive)).toEqual(new Sdk.SecureCallEnded({ reason: "hung-up" }))
        expect(yield* Effect.flip(atCustomer.receive)).toEqual(new Sdk.SecureCallEnded({ reason: "hung-up" }))
        expect(yield* Effect.flip(atCustomer.send({ type: "note", text: "too late" }))).toEqual(
          new Sdk.SecureCallEnded({ reason: "hung-up" })
        )
        expect(yield* Effect.flip(atHost.send({ type: "note", text: "too late" }))).toEqual(new Sdk.SecureCallEnded({ reason: "closed" }))
        expect(yield* Effect.flip(atCustomer.media.createReceiver())).toMatchObject({ _tag: "KeysDestroyed" })
        const afterHangUp = yield* Effect.either(Effect.tryPromise(() => hostSender.encrypt(frame)))
        expect(Either.isLeft(afterHangUp)).toBe(true)
        const lateFrame = yield* Effect.either(Effect.tryPromise(() => customerReceiver.decrypt(protectedFrame)))
        expect(Either.isLeft(lateFrame)).toBe(true)
      }))

    it.scoped("a call declined during the handshake ends it with the server's reason, and no key is left", () =>
      Effect.gen(function*() {
        const { host, customer, customerId } = yield* PracticeTag
        const { callId } = yield* host.rpc.call.invite({ peer: customerId })
        yield* within(customer.take((e): e is Extract<typeof e, { _tag: "IncomingCall" }> => e._tag === "IncomingCall" && e.callId === callId))
        const [atHost] = yield* Effect.all([
          Effect.flip(within(Sdk.secureCall(host, {
            callId,
            role: "caller",
            peerIdentityKeys: yield* Sdk.peerIdentityKeys(host, customerId)
          }))),
          Effect.delay(customer.rpc.call.decline({ callId, reason: "busy" }), "200 millis")
        ], { concurrency: 2 })
        expect(atHost).toEqual(new Sdk.SecureCallEnded({ reason: "busy" }))
      }))
  })
})
