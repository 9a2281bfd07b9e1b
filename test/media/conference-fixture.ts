/**
 * What the conference tests share: secured calls between a host and its customers (story.ts's people, on a real
 * server process), and a participant's media in the conference's relay room as werift peers: one audio track
 * sent (RelaySender) carrying SFrame frames under the conference's current epoch, 50 a second, and every other
 * participant's track received (RoomReceiver) and opened with the participant's conference keys.
 */
import { Duration, Effect, Fiber, Option, Stream } from "effect"
import { decodeSFrameHeader } from "../../src/crypto/sframe.js"
import type { CallId } from "../../src/domain/ids.js"
import type { ConferenceId } from "../../src/domain/liveEvents.js"
import { keyIdParts } from "../../src/sdk/ConferenceKeys.js"
import type { ConferenceKeys } from "../../src/sdk/ConferenceEpochs.js"
import * as Sdk from "../../src/sdk/node.js"
import { type CustomerDevice, type HostDevice, next } from "../server/story.js"
import { RoomReceiver } from "./conference-peer.js"
import { WERIFT_CAPABILITIES } from "./relay-fixture.js"
import { type ConsumerParameters, RelaySender } from "./relay-peer.js"

/** The host calls the customer, the customer answers, both secure the call with the keys they know of each other. */
export const securedCall = (host: HostDevice, customer: CustomerDevice) =>
  Effect.gen(function*() {
    const { callId } = yield* host.session.rpc.call.invite({ peer: customer.customerId })
    yield* next(customer.session, "IncomingCall", (e) => e.callId === callId)
    yield* customer.session.rpc.call.accept({ callId })
    const [atHost, atCustomer] = yield* Effect.all([
      Sdk.secureCall(host.session, { callId, role: "caller", peerIdentityKeys: [customer.credentials.keys.publicKeySpki] }),
      Sdk.secureCall(customer.session, { callId, role: "callee", peerIdentityKeys: [host.credentials.keys.publicKeySpki] })
    ], { concurrency: "unbounded" })
    return { callId, atHost, atCustomer }
  }).pipe(Effect.orDie)

/** Waits until `keys` are at epoch `epoch` (or later). */
export const atEpoch = (keys: ConferenceKeys, epoch: number, seconds = 10) =>
  keys.keyChanges.pipe(
    Stream.filter((key) => Option.exists(key, (k) => k.epoch >= epoch)),
    Stream.runHead,
    Effect.flatten,
    Effect.flatten,
    Effect.timeoutFail({ duration: Duration.seconds(seconds), onTimeout: () => new Error(`epoch ${epoch} not reached within ${seconds} s`) }),
    Effect.orDie
  )

export interface Decoded {
  readonly producerId: string
  readonly epoch: number
  readonly slot: number
  readonly text: string
  readonly at: number
}

export interface Sent {
  readonly kid: bigint
  readonly ciphertext: Uint8Array
  readonly at: number
}

const close = (peer: { close(): Promise<void> }) => Effect.promise(() => peer.close().catch(() => undefined))

/**
 * A participant in the conference's relay room: joins it (the conference id as `callId`), sends one audio track of
 * SFrame frames from its conference sender, receives the tracks it is told to, and decrypts them with its keys.
 * Peers close, and talking stops, with the scope.
 */
export const inRoom = (name: string, session: Sdk.DeviceSession, conferenceId: ConferenceId, keys: ConferenceKeys) =>
  Effect.gen(function*() {
    const rpc = session.rpc.relay
    const callId = conferenceId as CallId
    const joined = yield* rpc.join({ callId })
    const sender = yield* Effect.acquireRelease(Effect.promise(() => RelaySender.prepare(joined.sendTransport, "audio")), close)
    yield* rpc.connectTransport({ callId, direction: "send", dtlsParameters: sender.dtlsParameters })
    yield* Effect.promise(() => sender.connect())
    const { producerId } = yield* rpc.produce({ callId, kind: "audio", rtpParameters: sender.rtpParameters })

    const sent: Array<Sent> = []
    const decoded: Array<Decoded> = []
    /** Payloads that arrived, opened or not, with when. */
    const arrived: Array<{ readonly producerId: string; readonly at: number }> = []
    let undecryptable = 0
    const decryptor = yield* keys.createReceiver({ replayWindow: 1024 })
    let receiver: RoomReceiver | undefined

    const onPayload = (from: string, payload: Uint8Array) => {
      arrived.push({ producerId: from, at: performance.now() })
      decryptor.decrypt(payload).then((plaintext) => {
        const { epoch, slot } = keyIdParts(decodeSFrameHeader(payload).kid)
        decoded.push({ producerId: from, epoch, slot, text: new TextDecoder().decode(plaintext), at: performance.now() })
      }, () => undecryptable++)
    }

    /** Receives these tracks of the others (on the first call the receive transport connects). */
    const receive = (producerIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const consumers: Array<ConsumerParameters> = []
        for (const id of producerIds) {
          consumers.push(yield* rpc.consume({ callId, producerId: id, rtpCapabilities: WERIFT_CAPABILITIES }))
        }
        if (receiver === undefined) {
          const prepared = yield* Effect.promise(() => RoomReceiver.prepare(joined.receiveTransport, consumers))
          receiver = prepared.receiver
          yield* Effect.addFinalizer(() => close(prepared.receiver))
          prepared.receiver.onPayload(onPayload)
          yield* rpc.connectTransport({ callId, direction: "receive", dtlsParameters: prepared.dtlsParameters })
          yield* Effect.promise(() => prepared.receiver.connect())
        } else {
          const current = receiver
          yield* Effect.promise(() => current.add(consumers))
        }
        yield* Effect.forEach(consumers, (consumer) => rpc.resumeConsumer({ callId, consumerId: consumer.id }), { discard: true })
      }).pipe(Effect.orDie)

    // Talks all along: one frame every 20 ms under whatever epoch is current (none while there is no key).
    let count = 0
    const talking = yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const frame = new TextEncoder().encode(`${name} #${count++}`)
      const ciphertext = yield* Effect.option(Effect.tryPromise(() => keys.sender.encrypt(frame)))
      if (Option.isSome(ciphertext)) {
        sender.send(ciphertext.value)
        sent.push({ kid: decodeSFrameHeader(ciphertext.value).kid, ciphertext: ciphertext.value, at: performance.now() })
      }
      yield* Effect.sleep("20 millis")
    })))

    return {
      name,
      producerId,
      /** The tracks already in the room when it joined. */
      present: joined.producers.map((p) => p.producerId),
      receive,
      sent,
      decoded,
      arrived,
      undecryptable: () => undecryptable,
      stopTalking: Fiber.interrupt(talking)
    }
  }).pipe(Effect.orDie)

export type InRoom = Effect.Effect.Success<ReturnType<typeof inRoom>>

/** Waits until `party` decoded a frame of `producerId` at `epoch` (or later); returns it. */
export const decodedFrom = (party: InRoom, producerId: string, epoch: number, since = 0, seconds = 10) =>
  Effect.gen(function*() {
    const deadline = performance.now() + seconds * 1000
    while (performance.now() < deadline) {
      const found = party.decoded.find((d) => d.producerId === producerId && d.epoch >= epoch && d.at >= since)
      if (found) return found
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.dieMessage(`${party.name} decoded nothing of ${producerId} at epoch ${epoch} within ${seconds} s`)
  })
