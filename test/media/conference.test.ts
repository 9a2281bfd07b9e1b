/**
 * Host-led conferences with real parts: a real server process (own database, one mediasoup worker), the SDK over real
 * WebSockets for every device, calls secured end to end, and werift peers over ICE+DTLS+SRTP in the conference's
 * mediasoup room carrying SFrame frames under the conference's epoch keys. The host's device distributes the keys
 * over each customer's secured call; the server only relays and admits.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import { fromBase64Url } from "../../src/crypto/bytes.js"
import { SFrameReceiver, decodeSFrameHeader } from "../../src/crypto/sframe.js"
import type { CallId } from "../../src/domain/ids.js"
import type { LiveEvent } from "../../src/domain/liveEvents.js"
import { leadConference } from "../../src/sdk/ConferenceHost.js"
import { ConferenceKey, conferenceKeyId, keyIdParts } from "../../src/sdk/ConferenceKeys.js"
import type { ConferenceKeys } from "../../src/sdk/ConferenceEpochs.js"
import { joinConference } from "../../src/sdk/ConferenceMember.js"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import { type CustomerDevice, customerDevice, failure, type HostDevice, hostDevice, next, signIn } from "../server/story.js"
import { atEpoch, decodedFrom, type InRoom, inRoom, securedCall } from "./conference-fixture.js"

const RTC_PORTS = { TESSERA_RTC_MIN_PORT: "43000", TESSERA_RTC_MAX_PORT: "43999" }

const elapsed = (since: number) => Math.round(performance.now() - since)

const isConferenceEvent = (e: LiveEvent) => e._tag.startsWith("Conference")

/** The current key of each, once all reached `epoch`: the same epoch, each its own slot and key id. */
const allAt = (epoch: number, parties: ReadonlyArray<ConferenceKeys>) =>
  Effect.gen(function*() {
    const keys = yield* Effect.forEach(parties, (keys) => atEpoch(keys, epoch))
    expect(keys.map((k) => k.epoch)).toEqual(parties.map(() => epoch))
    for (const [i, party] of parties.entries()) expect(party.sender.keyId).toBe(conferenceKeyId(epoch, keys[i]!.slot))
    expect(new Set(keys.map((k) => k.slot)).size).toBe(parties.length)
    return keys
  })

/** Each party decodes each other party's frames of `epoch` (sent after `since`). */
const allDecodeEachOther = (rooms: ReadonlyArray<InRoom>, epoch: number, since: number) =>
  Effect.forEach(rooms, (to) =>
    Effect.forEach(rooms.filter((from) => from !== to), (from) =>
      Effect.map(decodedFrom(to, from.producerId, epoch, since), (frame) => {
        expect(frame.epoch).toBe(epoch)
        expect(frame.text).toMatch(new RegExp(`^${from.name} #\\d+$`))
      })), { concurrency: "unbounded" })

/** The first event of this kind the device received, whoever took it (the SDK takes some itself). */
const receivedEventually = <T extends LiveEvent["_tag"]>(
  session: Sdk.DeviceSession,
  tag: T,
  where: (event: Extract<LiveEvent, { _tag: T }>) => boolean = () => true
) =>
  session.received.changes.pipe(
    Stream.filterMap((events) =>
      Option.fromNullable(events.find((e): e is Extract<LiveEvent, { _tag: T }> => e._tag === tag && where(e as Extract<LiveEvent, { _tag: T }>)))
    ),
    Stream.runHead,
    Effect.flatten,
    Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error(`no ${tag} within 10 s`) }),
    Effect.orDie
  )

/** A customer's call, with every conference key that ever came over it recorded (what a leaver could keep). */
const recordingKeys = (call: Sdk.SecureCall<unknown>) => {
  const keys: Array<ConferenceKey> = []
  const isKey = Schema.is(ConferenceKey)
  return {
    keys,
    call: {
      callId: call.callId,
      receive: Effect.tap(call.receive, (message) => Effect.sync(() => isKey(message) && keys.push(message)))
    }
  }
}

/** Tries every key of `keys` on every frame, as the frame's own key id: what a participant that left could do. */
const openedWithAny = (keys: ReadonlyArray<ConferenceKey>, frames: ReadonlyArray<Uint8Array>) =>
  Effect.promise(async () => {
    let opened = 0
    for (const frame of frames) {
      for (const key of keys) {
        const receiver = new SFrameReceiver()
        await receiver.addKey(decodeSFrameHeader(frame).kid, fromBase64Url(key.key))
        opened += await receiver.decrypt(frame).then(() => 1, () => 0)
        receiver.destroy()
      }
    }
    return opened
  })

class People extends Context.Tag("test/ConferencePeople")<People, {
  readonly host: HostDevice
  readonly anna: CustomerDevice
  readonly ben: CustomerDevice
  readonly carla: CustomerDevice
}>() {}

const PeopleLive = Layer.scoped(People, Effect.gen(function*() {
  const server = yield* Server
  const host = yield* hostDevice(server)
  const [anna, ben, carla] = yield* Effect.forEach(["Anna", "Ben", "Carla"], (name) =>
    customerDevice(server, host, { name, customerNumber: `K-${name}` }))
  yield* Effect.forEach([host, anna!, ben!, carla!], (device) => device.session.setReady(true), { discard: true })
  return { host, anna: anna!, ben: ben!, carla: carla! }
}).pipe(Effect.orDie))

const Fixture = PeopleLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(RTC_PORTS), Sdk.NodeWebSocket)))

layer(Fixture, { excludeTestServices: true, timeout: Duration.minutes(4) })("conferences", (it) => {
  it.scoped("three parties, then a leave and a late join: a new epoch each time, everyone in it decodes everyone, the leaver nothing after", () =>
    Effect.gen(function*() {
      const { host, anna, ben, carla } = yield* People
      const figures: Record<string, number> = {}

      const conference = yield* leadConference(host.session)
      const { conferenceId } = conference
      expect(Option.getOrThrow(yield* conference.current).epoch).toBe(1)

      /** The host attaches a secured call; the customer hears of it and joins with its side of the call. */
      const bringIn = (customer: CustomerDevice, record = false) =>
        Effect.gen(function*() {
          const call = yield* securedCall(host, customer)
          const recorded = recordingKeys(call.atCustomer)
          yield* conference.attach(call.atHost)
          const joined = yield* next(customer.session, "ConferenceParticipantJoined", (e) => e.conferenceId === conferenceId)
          expect(joined).toMatchObject({ callId: call.callId })
          expect(joined.account).toBeUndefined()
          const member = yield* joinConference(customer.session, {
            conferenceId,
            call: record ? recorded.call : call.atCustomer
          })
          return { call, member, keys: recorded.keys }
        })

      // Anna joins: epoch 2. Ben joins (the host is in a conference call with Anna, yet may call him): epoch 3.
      const withAnna = yield* bringIn(anna)
      yield* allAt(2, [conference, withAnna.member])
      const withBen = yield* bringIn(ben, true)
      const three = yield* allAt(3, [conference, withAnna.member, withBen.member])
      expect(three.map((k) => k.slot)).toEqual([0, 1, 2])
      expect((yield* conference.participants).map((p) => p.callId)).toEqual([withAnna.call.callId, withBen.call.callId])

      // All three in the conference's relay room, each receiving the other two, each decoding both under epoch 3.
      const [hostRoom, annaRoom, benRoom] = yield* Effect.all([
        inRoom("host", host.session, conferenceId, conference),
        inRoom("anna", anna.session, conferenceId, withAnna.member),
        inRoom("ben", ben.session, conferenceId, withBen.member)
      ], { concurrency: "unbounded" })
      const rooms = [hostRoom!, annaRoom!, benRoom!]
      const connecting = performance.now()
      yield* Effect.forEach(rooms, (room) => room.receive(rooms.filter((r) => r !== room).map((r) => r.producerId)), {
        concurrency: "unbounded"
      })
      yield* allDecodeEachOther(rooms, 3, 0)
      figures.threePartiesDecodingMs = elapsed(connecting)

      // Ben hangs up: he is out of the room at once, the host starts epoch 4 for itself and Anna.
      const leaving = performance.now()
      yield* withBen.call.atCustomer.hangUp
      expect((yield* withBen.member.left).reason).toBe("call-ended")
      expect(Option.isNone(yield* withBen.member.current)).toBe(true)
      const leftAt = performance.now()
      yield* allAt(4, [conference, withAnna.member])
      figures.leaveToNewEpochMs = elapsed(leaving)
      // The host's SDK took the server's word for it; the host device heard it with Ben's account.
      expect(yield* receivedEventually(host.session, "ConferenceParticipantLeft")).toMatchObject({
        conferenceId,
        callId: withBen.call.callId,
        reason: "call-ended",
        account: ben.customerId
      })
      const since = performance.now()
      yield* allDecodeEachOther([hostRoom!, annaRoom!], 4, since)
      yield* Effect.sleep("500 millis")

      // Everything sent since the new epoch: Ben's device got none of it, and none of the keys he ever had opens it.
      const afterLeave = [...hostRoom!.sent, ...annaRoom!.sent].filter((s) => keyIdParts(s.kid).epoch >= 4)
      expect(afterLeave.length).toBeGreaterThan(40)
      expect(withBen.keys.map((k) => k.epoch)).toEqual([3])
      expect(yield* openedWithAny(withBen.keys, afterLeave.map((s) => s.ciphertext))).toBe(0)
      expect(benRoom!.arrived.filter((a) => a.at > leftAt + 100)).toEqual([])
      // Ben's own key did open what the others sent while he was in, so the check above can fail.
      const whileIn = [...hostRoom!.sent, ...annaRoom!.sent].filter((s) => keyIdParts(s.kid).epoch === 3).slice(0, 5)
      expect(yield* openedWithAny(withBen.keys, whileIn.map((s) => s.ciphertext))).toBe(whileIn.length)
      yield* benRoom!.stopTalking

      // Carla joins late, while the others talk: epoch 5, and she decodes both within 2 s of being attached.
      const carlaJoined = yield* Deferred.make<number>()
      const carlaCall = yield* securedCall(host, carla)
      const carlaSide = yield* Effect.fork(Effect.gen(function*() {
        yield* next(carla.session, "ConferenceParticipantJoined", (e) => e.conferenceId === conferenceId)
        const member = yield* joinConference(carla.session, { conferenceId, call: carlaCall.atCustomer })
        const room = yield* inRoom("carla", carla.session, conferenceId, member)
        expect(room.present.sort()).toEqual([hostRoom!.producerId, annaRoom!.producerId].sort())
        yield* room.receive(room.present)
        const attachedAt = yield* Deferred.await(carlaJoined)
        const first = yield* Effect.all([decodedFrom(room, hostRoom!.producerId, 5), decodedFrom(room, annaRoom!.producerId, 5)])
        return { member, room, decodedAfterMs: Math.round(Math.max(...first.map((f) => f.at)) - attachedAt) }
      }))
      const attaching = performance.now()
      yield* conference.attach(carlaCall.atHost)
      yield* Deferred.succeed(carlaJoined, attaching)
      const late = yield* Fiber.join(carlaSide)
      figures.lateJoinerDecodesMs = late.decodedAfterMs
      expect(late.decodedAfterMs).toBeLessThan(2000)
      const five = yield* allAt(5, [conference, withAnna.member, late.member])
      // Ben's slot was free again; his key ids (epoch 3) are not hers (epoch 5).
      expect(five.map((k) => k.slot)).toEqual([0, 1, 2])
      yield* Effect.forEach([hostRoom!, annaRoom!], (room) => room.receive([late.room.producerId]), { discard: true })
      yield* allDecodeEachOther([hostRoom!, annaRoom!, late.room], 5, performance.now())

      // Customers heard of their own joining and leaving only: no other customer's call, no account.
      for (const customer of [anna, ben, carla]) {
        const seen = (yield* customer.session.received.get).filter(isConferenceEvent)
        const own = customer === anna ? withAnna.call.callId : customer === ben ? withBen.call.callId : carlaCall.callId
        expect(seen.length).toBeGreaterThan(0)
        for (const event of seen) {
          expect(event).not.toHaveProperty("account")
          if ("callId" in event) expect(event.callId).toBe(own)
        }
      }

      // The host ends it: the customers are out, their keys gone, the room closed; their calls with the host go on.
      yield* conference.end
      for (const member of [withAnna.member, late.member]) expect((yield* member.left).reason).toBe("ended")
      expect((yield* failure(anna.session.rpc.relay.join({ callId: conferenceId })))._tag).toBe("NotPermitted")
      yield* withAnna.call.atHost.send({ note: "still there" })
      expect(yield* withAnna.member.receive).toEqual({ note: "still there" })

      console.info(`conference: ${JSON.stringify(figures)}`)
    }))

  it.effect("the server's output names no conference, call, account or key", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const output = server.stdout() + server.stderr()
      expect(output).toMatch(/^tessera listening on /)
      expect(output.split("\n").filter((line) => line.trim() !== "").length).toBe(1)
    }))
})

describe("conference access", () => {
  layer(Layer.merge(ServerLive({ TESSERA_RTC_MIN_PORT: "42000", TESSERA_RTC_MAX_PORT: "42999" }), Sdk.NodeWebSocket), {
    excludeTestServices: true,
    timeout: Duration.minutes(3)
  })((it) => {
    it.scoped("only the host and attached customers join the room, others get typed errors; detach, leave, revocation and a vanished host take people out", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* hostDevice(server)
        const [anna, dora, idle] = yield* Effect.forEach(["Anna", "Dora", "Ida"], (name) =>
          customerDevice(server, host, { name, customerNumber: `K-${name}` }))
        const otherHost = yield* hostDevice(server)
        const eve = yield* customerDevice(server, otherHost, { name: "Eve", customerNumber: "K-Eve" })
        yield* Effect.forEach([host, anna!, dora!, idle!, otherHost, eve], (d) => d.session.setReady(true), { discard: true })
        const roomOf = (conferenceId: CallId) => ({ callId: conferenceId })

        const conference = yield* leadConference(host.session)
        const { conferenceId } = conference
        const withAnna = yield* securedCall(host, anna!)
        yield* conference.attach(withAnna.atHost)
        yield* host.session.rpc.relay.join(roomOf(conferenceId))
        yield* anna!.session.rpc.relay.join(roomOf(conferenceId))

        // A ringing call cannot be attached; while it is in one, the host may ring others.
        const { callId: ringing } = yield* host.session.rpc.call.invite({ peer: idle!.customerId })
        expect(yield* failure(host.session.rpc.conference.attach({ conferenceId, callId: ringing })))
          .toMatchObject({ _tag: "CallStateInvalid", state: "ringing" })
        yield* host.session.rpc.call.cancel({ callId: ringing })
        // Dora is in a call with the host, not attached: no entry. Ida is in no call at all. Eve is another host's.
        const withDora = yield* securedCall(host, dora!)
        for (const outsider of [dora!, idle!, eve, otherHost]) {
          expect((yield* failure(outsider.session.rpc.relay.join(roomOf(conferenceId))))._tag).toBe("NotPermitted")
          expect((yield* failure(outsider.session.rpc.relay.produce({
            callId: conferenceId,
            kind: "audio",
            rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }] }
          })))._tag).toBe("RelayNotJoined")
          expect((yield* failure(outsider.session.rpc.conference.leave({ conferenceId })))._tag).toBe("ConferenceNotFound")
        }
        // Customers cannot lead; another host cannot touch this conference, nor attach a call that is not its own.
        expect((yield* failure(anna!.session.rpc.conference.create()))._tag).toBe("NotPermitted")
        expect((yield* failure(anna!.session.rpc.conference.attach({ conferenceId, callId: withDora.callId })))._tag).toBe("NotPermitted")
        const otherCall = yield* securedCall(otherHost, eve)
        expect((yield* failure(otherHost.session.rpc.conference.attach({ conferenceId, callId: otherCall.callId })))._tag)
          .toBe("ConferenceNotFound")
        expect((yield* failure(otherHost.session.rpc.conference.end({ conferenceId })))._tag).toBe("ConferenceNotFound")
        const own = yield* otherHost.session.rpc.conference.create()
        expect((yield* failure(otherHost.session.rpc.conference.attach({ conferenceId: own.conferenceId, callId: withDora.callId })))._tag)
          .toBe("CallNotFound")
        expect((yield* failure(otherHost.session.rpc.conference.create()))._tag).toBe("InvalidRequest")
        // A host busy with a call outside the conference cannot call yet another customer (as before conferences).
        expect((yield* failure(host.session.rpc.call.invite({ peer: idle!.customerId })))._tag).toBe("PeerBusy")

        // Attached, Dora joins; detached, she is out of the room again and her call goes on.
        yield* conference.attach(withDora.atHost)
        yield* next(dora!.session, "ConferenceParticipantJoined", (e) => e.conferenceId === conferenceId)
        yield* dora!.session.rpc.relay.join(roomOf(conferenceId))
        yield* conference.detach(withDora.callId)
        const left = yield* next(dora!.session, "ConferenceParticipantLeft", (e) => e.conferenceId === conferenceId)
        expect(left).toMatchObject({ callId: withDora.callId, reason: "detached" })
        expect(left.account).toBeUndefined()
        expect((yield* failure(dora!.session.rpc.relay.connectTransport({
          callId: conferenceId,
          direction: "send",
          dtlsParameters: { fingerprints: [{ algorithm: "sha-256", value: "AB:".repeat(31) + "AB" }] }
        })))._tag).toBe("RelayNotJoined")
        expect((yield* failure(dora!.session.rpc.relay.join(roomOf(conferenceId))))._tag).toBe("NotPermitted")
        expect((yield* failure(host.session.rpc.conference.detach({ conferenceId, callId: withDora.callId })))._tag).toBe("CallNotFound")
        yield* withDora.atHost.send("after the conference")
        const isKey = Schema.is(ConferenceKey)
        let message = yield* withDora.atCustomer.receive
        while (isKey(message)) message = yield* withDora.atCustomer.receive
        expect(message).toBe("after the conference")

        // Anna leaves on her own: out of the room, the host is told. The host leaving ends the conference.
        yield* anna!.session.rpc.conference.leave({ conferenceId })
        expect((yield* failure(anna!.session.rpc.relay.join(roomOf(conferenceId))))._tag).toBe("NotPermitted")
        while ((yield* conference.participants).length > 0) yield* Effect.sleep("10 millis")
        yield* conference.attach(withAnna.atHost)
        yield* host.session.rpc.conference.leave({ conferenceId })
        const ended = yield* next(anna!.session, "ConferenceEnded", (e) => e.conferenceId === conferenceId)
        expect(ended.reason).toBe("ended")
        expect((yield* failure(host.session.rpc.relay.join(roomOf(conferenceId))))._tag).toBe("NotPermitted")
        expect((yield* failure(host.session.rpc.conference.attach({ conferenceId, callId: withAnna.callId })))._tag)
          .toBe("ConferenceNotFound")
        yield* Effect.all([withAnna.atHost.hangUp, withDora.atHost.hangUp])

        // A customer whose access is revoked in a conference is out of it: the host's device starts a new epoch.
        const again = yield* leadConference(host.session)
        const withIda = yield* securedCall(host, idle!)
        yield* again.attach(withIda.atHost)
        const before = Option.getOrThrow(yield* again.current).epoch
        yield* host.session.rpc.host.revokeActivation({ customerId: idle!.customerId })
        yield* atEpoch(again, before + 1)
        expect(yield* again.participants).toEqual([])
        expect(yield* receivedEventually(host.session, "ConferenceParticipantLeft", (e) => e.callId === withIda.callId))
          .toMatchObject({ reason: "call-ended", account: idle!.customerId })
        yield* again.end

        // A host device that goes away ends the conference it led: its customers hear "host-left".
        const gone = yield* Effect.scoped(Effect.gen(function*() {
          const session = yield* signIn(server, host)
          const { conferenceId: id } = yield* session.rpc.conference.create()
          const { callId } = yield* session.rpc.call.invite({ peer: anna!.customerId })
          yield* next(anna!.session, "IncomingCall", (e) => e.callId === callId)
          yield* anna!.session.rpc.call.accept({ callId })
          yield* session.rpc.conference.attach({ conferenceId: id, callId })
          yield* anna!.session.rpc.relay.join(roomOf(id))
          return id
        }))
        expect((yield* next(anna!.session, "ConferenceEnded", (e) => e.conferenceId === gone)).reason).toBe("host-left")
        expect((yield* failure(anna!.session.rpc.relay.join(roomOf(gone))))._tag).toBe("NotPermitted")
      }))
  })
})
