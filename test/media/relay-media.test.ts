/**
 * Media through the relay with real parts: the server's layers in this process (so the test can tap its routers and
 * kill its worker), a real mediasoup worker, the SDK over real WebSockets, and two werift WebRTC peers per call
 * talking ICE+DTLS+SRTP to the relay's WebRtcTransports on 127.0.0.1. The parties secure the call with the SDK's
 * handshake over call.signal and put SFrame frames under the call's keys into their RTP payloads (Opus: the relay
 * forwards those payloads untouched; see relay-peer.ts).
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Layer, Option } from "effect"
import type { types } from "mediasoup"
import { randomBytes } from "node:crypto"
import { RtpPacket } from "werift"
import { SFRAME_KID } from "../../src/crypto/session.js"
import { decodeSFrameHeader, SFrameReceiver, type SFrameSender } from "../../src/crypto/sframe.js"
import type { CallId } from "../../src/domain/ids.js"
import * as Sdk from "../../src/sdk/node.js"
import {
  acceptedCall,
  type Customer,
  inProcessServer,
  next,
  type Party,
  practice,
  type RelayedParty,
  relayParty,
  type RelayServer
} from "./relay-fixture.js"

class Server extends Context.Tag("test/RelayServer")<Server, RelayServer>() {}
const ServerLive = Layer.merge(Layer.scoped(Server, inProcessServer), Sdk.NodeWebSocket)

const FRAMES = 40
const MARKER = "tessera-plaintext-frame"
const text = new TextEncoder()

/** Audio-sized frames (a marker, a number and random filler), as an encoder would hand them to SFrame. */
const plaintextFrames = (label: string) =>
  Array.from({ length: FRAMES }, (_, i) => {
    const head = text.encode(`${MARKER} ${label} #${i} `)
    const frame = new Uint8Array(160)
    frame.set(head)
    frame.set(randomBytes(frame.length - head.length), head.length)
    return frame
  })

const contains = (haystack: Uint8Array, needle: Uint8Array) =>
  Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(Buffer.from(needle))
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** Collects the payloads of the first `count` packets of a consumer, or what came within the deadline. */
const collect = (receiver: RelayedParty["receiver"], consumerId: string, count: number) =>
  Effect.gen(function*() {
    const payloads: Array<Uint8Array> = []
    const done = yield* Deferred.make<void>()
    const stop = receiver.onPayload((id, payload) => {
      if (id !== consumerId) return
      payloads.push(payload)
      if (payloads.length >= count) Deferred.unsafeDone(done, Effect.void)
    })
    return {
      payloads,
      done: Deferred.await(done).pipe(Effect.timeout(Duration.seconds(10)), Effect.ignore, Effect.ensuring(Effect.sync(stop)))
    }
  })

/** A DirectTransport consumer on the room's router: every RTP payload the relay forwards of `producerId`. */
const tap = (server: RelayServer, callId: CallId, producerId: string) =>
  Effect.gen(function*() {
    const router = Option.getOrThrow(yield* server.rooms.routerOf(callId))
    const direct = yield* Effect.acquireRelease(Effect.promise(() => router.createDirectTransport()), (t) => Effect.sync(() => t.close()))
    const consumer: types.Consumer = yield* Effect.promise(() =>
      direct.consume({ producerId, rtpCapabilities: router.rtpCapabilities }))
    const payloads: Array<Uint8Array> = []
    consumer.on("rtp", (packet) => payloads.push(new Uint8Array(RtpPacket.deSerialize(packet).payload)))
    return payloads
  })

const encryptAll = (sender: SFrameSender, frames: ReadonlyArray<Uint8Array>) =>
  Effect.promise(() => Promise.all(frames.map((frame) => sender.encrypt(frame))))

/** Sends one SFrame ciphertext per RTP packet, 20 ms apart like Opus frames. */
const sendAll = (from: RelayedParty, ciphertexts: ReadonlyArray<Uint8Array>) =>
  Effect.forEach(ciphertexts, (ciphertext) => Effect.zipRight(Effect.sync(() => from.sender.send(ciphertext)), Effect.sleep("20 millis")), {
    discard: true
  })

/** Decrypts every payload; the plaintexts, or the number of payloads that did not decrypt. */
const decryptAll = (receiver: SFrameReceiver, payloads: ReadonlyArray<Uint8Array>) =>
  Effect.promise(async () => {
    const plaintexts: Array<Uint8Array> = []
    let failed = 0
    for (const payload of payloads) {
      try {
        plaintexts.push(await receiver.decrypt(payload))
      } catch {
        failed++
      }
    }
    return { plaintexts, failed }
  })

const wrongKeyReceiver = (kid: bigint) =>
  Effect.promise(async () => {
    const receiver = new SFrameReceiver()
    await receiver.addKey(kid, randomBytes(32))
    return receiver
  })

/** Both parties secured the call (handshake over call.signal) and hold its SFrame keys. */
const securedCall = (host: Party, customer: Customer, callId: CallId) =>
  Effect.all([
    Sdk.secureCall(host.session, { callId, role: "caller", peerIdentityKeys: [customer.credentials.keys.publicKeySpki] }),
    Sdk.secureCall(customer.session, { callId, role: "callee", peerIdentityKeys: [host.credentials.keys.publicKeySpki] })
  ], { concurrency: "unbounded" }).pipe(Effect.orDie)

/**
 * One direction of a relayed call: `from` sends SFrame frames, `to` receives them; the tap on the relay's router
 * sees the same packets. Checks everything a user and an auditor would: the frames arrive and decrypt to what was
 * sent, a wrong key decrypts none, and the relay only ever had ciphertext.
 */
const checkDirection = (
  server: RelayServer,
  callId: CallId,
  from: { readonly side: RelayedParty; readonly sframe: SFrameSender; readonly kid: bigint; readonly label: string },
  to: { readonly side: RelayedParty; readonly receiver: SFrameReceiver; readonly spare: SFrameReceiver }
) =>
  Effect.gen(function*() {
    const frames = plaintextFrames(from.label)
    const ciphertexts = yield* encryptAll(from.sframe, frames)
    const tapped = yield* tap(server, callId, from.side.producerId)
    const received = yield* collect(to.side.receiver, to.side.consumer.id, FRAMES)
    yield* sendAll(from.side, ciphertexts)
    yield* received.done
    yield* Effect.sleep("200 millis")

    // The receiving party gets every frame, and the call's key opens each to exactly what was sent.
    expect(received.payloads.map(hex)).toEqual(ciphertexts.map(hex))
    const opened = yield* decryptAll(to.receiver, received.payloads)
    expect(opened.failed).toBe(0)
    expect(opened.plaintexts.map(hex)).toEqual(frames.map(hex))
    // Another key for the same key id opens none.
    const wrong = yield* decryptAll(yield* wrongKeyReceiver(from.kid), received.payloads)
    expect(wrong).toEqual({ plaintexts: [], failed: FRAMES })

    // What the relay forwards is that ciphertext, byte for byte: SFrame frames under the sender's key id, with
    // no plaintext in them, that no other key opens.
    expect(tapped.map(hex)).toEqual(ciphertexts.map(hex))
    for (const [i, payload] of tapped.entries()) {
      expect(decodeSFrameHeader(payload).kid).toBe(from.kid)
      expect(contains(payload, text.encode(MARKER))).toBe(false)
      expect(contains(payload, frames[i]!.subarray(40, 72))).toBe(false)
    }
    const tappedWrong = yield* decryptAll(yield* wrongKeyReceiver(from.kid), tapped)
    expect(tappedWrong.failed).toBe(FRAMES)
    const tappedRight = yield* decryptAll(to.spare, tapped)
    expect(tappedRight.plaintexts.map(hex)).toEqual(frames.map(hex))
  })

const bothJoin = (host: Party, customer: Customer, callId: CallId) =>
  Effect.all([relayParty(host, callId, "audio"), relayParty(customer, callId, "audio")], { concurrency: "unbounded" })

const elapsed = (since: number) => Math.round(performance.now() - since)

layer(ServerLive, { excludeTestServices: true, timeout: Duration.minutes(3) })("relay media", (it) => {
  it.scoped("SFrame frames cross the relay both ways; the parties decrypt them, a wrong key and the relay cannot", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const { host, customers: [customer] } = yield* practice(server.url, yield* server.enrollHost, 1)
      const callId = yield* acceptedCall(host, customer!)
      const [hostCall, customerCall] = yield* securedCall(host, customer!, callId)

      const joining = performance.now()
      const [hostSide, customerSide] = yield* bothJoin(host, customer!, callId)
      const joinMs = elapsed(joining)

      yield* checkDirection(server, callId, {
        side: hostSide,
        sframe: yield* hostCall.media.createSender,
        kid: SFRAME_KID.caller,
        label: "host"
      }, {
        side: customerSide,
        receiver: yield* customerCall.media.createReceiver(),
        spare: yield* customerCall.media.createReceiver()
      })
      yield* checkDirection(server, callId, {
        side: customerSide,
        sframe: yield* customerCall.media.createSender,
        kid: SFRAME_KID.callee,
        label: "customer"
      }, {
        side: hostSide,
        receiver: yield* hostCall.media.createReceiver(),
        spare: yield* hostCall.media.createReceiver()
      })
      console.info(`relay: both parties joined, connected and receiving in ${joinMs} ms`)
    }))

  it.scoped("a worker killed mid-call: both parties are told, join again, and media flows again", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const { host, customers: [customer] } = yield* practice(server.url, yield* server.enrollHost, 1)
      const callId = yield* acceptedCall(host, customer!)
      const [hostCall, customerCall] = yield* securedCall(host, customer!, callId)
      const sframe = yield* hostCall.media.createSender
      const receiver = yield* customerCall.media.createReceiver()

      const sendAndReceive = (from: RelayedParty, to: RelayedParty) =>
        Effect.gen(function*() {
          const frames = plaintextFrames("restart").slice(0, 10)
          const received = yield* collect(to.receiver, to.consumer.id, frames.length)
          yield* sendAll(from, yield* encryptAll(sframe, frames))
          yield* received.done
          const opened = yield* decryptAll(receiver, received.payloads)
          expect(opened.plaintexts.map(hex)).toEqual(frames.map(hex))
        })

      const [hostBefore, customerBefore] = yield* bothJoin(host, customer!, callId)
      yield* sendAndReceive(hostBefore, customerBefore)
      const routerBefore = Option.getOrThrow(yield* server.rooms.routerOf(callId))

      const [worker] = yield* server.pool.workers
      const killed = performance.now()
      process.kill(worker!.pid!, "SIGKILL")
      yield* Effect.all([
        next(host, "RelayRestarted", (e) => e.callId === callId),
        next(customer!, "RelayRestarted", (e) => e.callId === callId)
      ], { concurrency: "unbounded" })
      const restartedMs = elapsed(killed)
      expect(routerBefore.closed).toBe(true)
      expect((yield* server.pool.workers)[0]!.pid).not.toBe(worker!.pid)
      // The old transports are gone with the old worker: requests on them are refused until the party joins again.
      const stale = yield* Effect.flip(host.session.rpc.relay.connectTransport({
        callId,
        direction: "send",
        dtlsParameters: hostBefore.sender.dtlsParameters
      }))
      expect(stale._tag).toBe("RelayNotJoined")

      const rejoining = performance.now()
      const [hostAfter, customerAfter] = yield* bothJoin(host, customer!, callId)
      const rejoinMs = elapsed(rejoining)
      yield* sendAndReceive(hostAfter, customerAfter)
      const routerAfter = Option.getOrThrow(yield* server.rooms.routerOf(callId))
      expect(routerAfter).not.toBe(routerBefore)
      expect(routerAfter.closed).toBe(false)
      console.info(`relay: worker killed -> RelayRestarted at both parties in ${restartedMs} ms, rejoined and receiving in ${rejoinMs} ms`)
    }))

  describe("a call's room closes with the call", () => {
    /** A call whose two parties joined the relay; the room's router, to watch it close. */
    const joinedCall = (host: Party, customer: Customer) =>
      Effect.gen(function*() {
        const server = yield* Server
        const callId = yield* acceptedCall(host, customer)
        yield* Effect.all([host.session.rpc.relay.join({ callId }), customer.session.rpc.relay.join({ callId })], {
          concurrency: "unbounded"
        })
        const router = Option.getOrThrow(yield* server.rooms.routerOf(callId))
        const transports = yield* Effect.promise(() => router.dump().then((dump) => dump.transportIds.length))
        expect(transports).toBe(4)
        return { callId, router }
      }).pipe(Effect.orDie)

    const closedSoon = (server: RelayServer, callId: CallId, router: types.Router) =>
      Effect.gen(function*() {
        while (!router.closed || Option.isSome(yield* server.rooms.routerOf(callId))) yield* Effect.sleep("20 millis")
      }).pipe(Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("the room stayed open") }), Effect.orDie)

    it.scoped("on hang-up, when a party disconnects, and when the customer's access is revoked", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { host, customers } = yield* practice(server.url, yield* server.enrollHost, 3)
        const [hangsUp, disconnects, revoked] = customers as [Customer, Customer, Customer]

        const first = yield* joinedCall(host, hangsUp)
        yield* host.session.rpc.call.hangUp({ callId: first.callId })
        // Closed by the time the hang-up is answered.
        expect(first.router.closed).toBe(true)
        expect(Option.isNone(yield* server.rooms.routerOf(first.callId))).toBe(true)
        const afterHangUp = yield* Effect.flip(hangsUp.session.rpc.relay.produce({
          callId: first.callId,
          kind: "audio",
          rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }] }
        }))
        expect(afterHangUp._tag).toBe("RelayNotJoined")

        // A disconnect ends the call, and the room with it: the customer answers on a second device connection
        // that then goes away.
        yield* disconnects.session.setReady(false)
        const second = yield* Effect.scoped(Effect.gen(function*() {
          const session = yield* Sdk.signIn(disconnects.credentials, Sdk.memoryKeyStore(), { url: server.url })
          yield* session.setReady(true)
          return yield* joinedCall(host, { ...disconnects, session })
        }))
        yield* closedSoon(server, second.callId, second.router)
        yield* next(host, "CallEnded", (e) => e.callId === second.callId && e.reason === "disconnected")

        const third = yield* joinedCall(host, revoked)
        yield* host.session.rpc.host.revokeActivation({ customerId: revoked.customerId })
        yield* closedSoon(server, third.callId, third.router)
        yield* next(host, "CallEnded", (e) => e.callId === third.callId && e.reason === "access-revoked")
        expect(yield* server.rooms.openRooms).toEqual([])
      }))
  })
})
