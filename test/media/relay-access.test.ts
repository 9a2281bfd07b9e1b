/**
 * Who may use a call's relay, and what bad requests get, against a real server process (test/support/server.ts,
 * one mediasoup worker) through the SDK: only the two parties of an accepted call join; everybody else, and the
 * parties while it rings, get typed errors; parameters mediasoup refuses come back as InvalidRequest; tracks come
 * and go with RelayProducerAdded / RelayProducerClosed; a participant gets fresh ICE credentials per transport
 * (relay.restartIce), nobody else does. No WebRTC here: relay-media.test.ts sends real media, relay-call.test.ts
 * restarts ICE in Chromium.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { Deferred, Duration, Effect, Layer } from "effect"
import { createRequire } from "node:module"
import type { CallId } from "../../src/domain/ids.js"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import { acceptedCall, type Customer, enrollHostOn, next, type Party, practice } from "./relay-fixture.js"

const opus = (ssrc: number, mid = String(ssrc)) => ({
  mid,
  codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
  encodings: [{ ssrc }],
  rtcp: { cname: "relay-access", reducedSize: true }
})

const people = Effect.gen(function*() {
  const server = yield* Server
  return yield* practice(server.url, yield* enrollHostOn(server.env), 2)
})

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

interface RawSocket {
  send(data: Uint8Array): void
  close(): void
  on(event: "open" | "close", listener: () => void): void
  on(event: "message", listener: (data: Buffer) => void): void
}
const { WebSocket } = createRequire(import.meta.url)("ws") as { readonly WebSocket: new(url: string) => RawSocket }

/** One request in the RPC wire format by hand (what no SDK sends), and the server's answer to it. */
const rawRequest = (url: string, tag: string, payload: unknown) =>
  Effect.gen(function*() {
    const parser = RpcSerialization.msgPack.unsafeMake()
    const answer = yield* Deferred.make<Record<string, unknown>>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const ws = new WebSocket(url)
        ws.on("open", () => ws.send(parser.encode({ _tag: "Request", id: "1", tag, payload, headers: [] }) as Uint8Array))
        ws.on("message", (data) => {
          for (const message of parser.decode(new Uint8Array(data))) Deferred.unsafeDone(answer, Effect.succeed(message as Record<string, unknown>))
        })
        return ws
      }),
      (ws) => Effect.sync(() => ws.close())
    )
    return yield* Deferred.await(answer).pipe(Effect.timeout(Duration.seconds(10)), Effect.orDie)
  })

layer(Layer.merge(ServerLive(), Sdk.NodeWebSocket), { excludeTestServices: true, timeout: Duration.minutes(3) })("relay access", (it) => {
  it.scoped("only the parties of an accepted call join its relay; the others get typed errors", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const { host, customers: [inCall, outsider] } = yield* people
      const { callId } = yield* host.session.rpc.call.invite({ peer: inCall!.customerId })
      yield* next(inCall!, "IncomingCall", (e) => e.callId === callId)

      // Ringing: neither party may join yet, and an outsider learns nothing about the call.
      expect(yield* failureOf(host.session.rpc.relay.join({ callId }))).toMatchObject({ _tag: "CallStateInvalid", state: "ringing" })
      expect(yield* failureOf(inCall!.session.rpc.relay.join({ callId }))).toMatchObject({ _tag: "CallStateInvalid", state: "ringing" })
      expect((yield* failureOf(outsider!.session.rpc.relay.join({ callId })))._tag).toBe("NotPermitted")

      yield* inCall!.session.rpc.call.accept({ callId })
      yield* next(host, "CallAccepted", (e) => e.callId === callId)

      expect((yield* failureOf(outsider!.session.rpc.relay.join({ callId })))._tag).toBe("NotPermitted")
      expect((yield* failureOf(outsider!.session.rpc.relay.join({ callId: "k_AAAAAAAAAAAAAAAAAAAAAA" as CallId })))._tag).toBe("NotPermitted")
      expect((yield* failureOf(outsider!.session.rpc.relay.produce({ callId, kind: "audio", rtpParameters: opus(1111) })))._tag)
        .toBe("RelayNotJoined")
      // Without a signed-in device nothing of the relay is served at all.
      const anonymous = yield* Sdk.openConnection(server.url)
      expect((yield* failureOf(anonymous.rpc.relay.join({ callId })))._tag).toBe("Unauthenticated")

      const joined = yield* host.session.rpc.relay.join({ callId })
      for (const transport of [joined.sendTransport, joined.receiveTransport]) {
        const udp = transport.iceCandidates.filter((c) => c.protocol === "udp")
        const tcp = transport.iceCandidates.filter((c) => c.protocol === "tcp")
        expect(udp).toHaveLength(1)
        expect(tcp).toHaveLength(1)
        expect(transport.iceCandidates.every((c) => c.address === "127.0.0.1")).toBe(true)
        expect(udp[0]!.priority).toBeGreaterThan(tcp[0]!.priority)
        expect(transport.iceParameters.iceLite).toBe(true)
        expect(transport.dtlsParameters.fingerprints.some((f) => f.algorithm === "sha-256")).toBe(true)
      }
      expect(joined.sendTransport.id).not.toBe(joined.receiveTransport.id)
      const mimeTypes = joined.routerRtpCapabilities.codecs?.map((codec) => codec.mimeType)
      expect(mimeTypes).toEqual(expect.arrayContaining(["audio/opus", "video/VP8"]))
      expect(joined.routerRtpCapabilities.codecs?.find((c) => c.mimeType === "audio/opus")).toMatchObject({ clockRate: 48000, channels: 2 })
      expect(joined.producers).toEqual([])
      yield* inCall!.session.rpc.relay.join({ callId })

      // Once the call is over its relay is gone: nobody joins it again, and the old participation is void.
      yield* host.session.rpc.call.hangUp({ callId })
      expect((yield* failureOf(host.session.rpc.relay.join({ callId })))._tag).toBe("NotPermitted")
      expect((yield* failureOf(inCall!.session.rpc.relay.produce({ callId, kind: "audio", rtpParameters: opus(2222) })))._tag)
        .toBe("RelayNotJoined")
    }))

  describe("in a joined relay", () => {
    const joinedCall = (host: Party, customer: Customer) =>
      Effect.gen(function*() {
        const callId = yield* acceptedCall(host, customer)
        const [hostJoined, customerJoined] = yield* Effect.all([
          host.session.rpc.relay.join({ callId }),
          customer.session.rpc.relay.join({ callId })
        ], { concurrency: "unbounded" })
        return { callId, hostJoined, customerJoined }
      })

    it.scoped("tracks are announced to the other party, consumed paused, resumed, and withdrawn when their sender leaves", () =>
      Effect.gen(function*() {
        const { host, customers: [customer] } = yield* people
        const { callId, customerJoined } = yield* joinedCall(host, customer!)

        const { producerId } = yield* host.session.rpc.relay.produce({ callId, kind: "audio", rtpParameters: opus(3333) })
        const added = yield* next(customer!, "RelayProducerAdded", (e) => e.callId === callId)
        expect(added).toMatchObject({ producerId, kind: "audio" })

        const consumer = yield* customer!.session.rpc.relay.consume({
          callId,
          producerId,
          rtpCapabilities: customerJoined.routerRtpCapabilities
        })
        expect(consumer).toMatchObject({ producerId, kind: "audio" })
        expect(consumer.rtpParameters.codecs[0]).toMatchObject({ mimeType: "audio/opus", clockRate: 48000, channels: 2 })
        expect(consumer.rtpParameters.encodings?.[0]?.ssrc).toEqual(expect.any(Number))
        yield* customer!.session.rpc.relay.resumeConsumer({ callId, consumerId: consumer.id })

        // A party that joins again later is handed the tracks already there.
        const again = yield* customer!.session.rpc.relay.join({ callId })
        expect(again.producers).toEqual([{ producerId, kind: "audio" }])

        yield* host.session.rpc.relay.leave({ callId })
        const closed = yield* next(customer!, "RelayProducerClosed", (e) => e.callId === callId)
        expect(closed.producerId).toBe(producerId)
        expect((yield* failureOf(host.session.rpc.relay.produce({ callId, kind: "audio", rtpParameters: opus(4444) })))._tag)
          .toBe("RelayNotJoined")
        // Leaving twice is harmless; joining again works while the call lasts.
        yield* host.session.rpc.relay.leave({ callId })
        yield* host.session.rpc.relay.join({ callId })
      }))

    it.scoped("a participant gets fresh ICE credentials for each of its transports; a non-participant gets RelayNotJoined", () =>
      Effect.gen(function*() {
        const { host, customers: [customer, outsider] } = yield* people
        const callId = yield* acceptedCall(host, customer!)
        const hostJoined = yield* host.session.rpc.relay.join({ callId })
        // A party of the call that has not joined its relay yet.
        expect((yield* failureOf(customer!.session.rpc.relay.restartIce({ callId, direction: "send" })))._tag).toBe("RelayNotJoined")
        const customerJoined = yield* customer!.session.rpc.relay.join({ callId })
        for (const [party, joined] of [[host, hostJoined], [customer!, customerJoined]] as const) {
          for (const direction of ["send", "receive"] as const) {
            const given = (direction === "send" ? joined.sendTransport : joined.receiveTransport).iceParameters
            const first = (yield* party.session.rpc.relay.restartIce({ callId, direction })).iceParameters
            expect(first.usernameFragment).not.toBe(given.usernameFragment)
            expect(first.password).not.toBe(given.password)
            expect(first.iceLite).toBe(true)
            // Every restart is a new ICE generation.
            const second = (yield* party.session.rpc.relay.restartIce({ callId, direction })).iceParameters
            expect(second.usernameFragment).not.toBe(first.usernameFragment)
            expect(second.password).not.toBe(first.password)
          }
        }
        // Another account's device; a party that has left the relay.
        for (const direction of ["send", "receive"] as const) {
          expect((yield* failureOf(outsider!.session.rpc.relay.restartIce({ callId, direction })))._tag).toBe("RelayNotJoined")
        }
        yield* customer!.session.rpc.relay.leave({ callId })
        expect((yield* failureOf(customer!.session.rpc.relay.restartIce({ callId, direction: "receive" })))._tag).toBe("RelayNotJoined")
        // The SDK does not send a direction the contract does not know.
        const sideways = yield* Effect.exit(host.session.rpc.relay.restartIce({ callId, direction: "sideways" as "send" }))
        expect(sideways._tag).toBe("Failure")
        expect(String(sideways)).toContain("sideways")
        // The participant that stayed still gets its restarts.
        yield* host.session.rpc.relay.restartIce({ callId, direction: "send" })
      }))

    it.scoped("parameters the relay cannot use are refused with InvalidRequest, oversized ones before they are sent", () =>
      Effect.gen(function*() {
        const { host, customers: [customer] } = yield* people
        const { callId, hostJoined } = yield* joinedCall(host, customer!)
        const rpc = host.session.rpc.relay
        const invalid = <A, E extends { readonly _tag: string }, R>(what: string, effect: Effect.Effect<A, E, R>) =>
          Effect.flatMap(Effect.either(effect), (outcome) => {
            if (outcome._tag === "Right") return Effect.dieMessage(`${what} was accepted`)
            expect(outcome.left._tag, what).toBe("InvalidRequest")
            return Effect.succeed((outcome.left as unknown as { readonly reason: string }).reason)
          })

        yield* invalid("an unknown codec", rpc.produce({
          callId,
          kind: "audio",
          rtpParameters: { codecs: [{ mimeType: "audio/nonsense", payloadType: 100, clockRate: 8000 }], encodings: [{ ssrc: 5 }] }
        }))
        expect(yield* invalid("a video track of Opus", rpc.produce({ callId, kind: "video", rtpParameters: opus(6666) })))
          .toBe("every codec of a video track must be video/*")
        expect(yield* invalid("an unknown producer", rpc.consume({ callId, producerId: "no-such-producer", rtpCapabilities: hostJoined.routerRtpCapabilities })))
          .toBe("no such track in this relay")
        const own = yield* rpc.produce({ callId, kind: "audio", rtpParameters: opus(7777) })
        yield* invalid("the same SSRC twice", rpc.produce({ callId, kind: "audio", rtpParameters: opus(7777, "other") }))
        yield* invalid("the same MID twice", rpc.produce({ callId, kind: "audio", rtpParameters: opus(7778, "7777") }))
        expect(yield* invalid("one's own track", rpc.consume({ callId, producerId: own.producerId, rtpCapabilities: hostJoined.routerRtpCapabilities })))
          .toBe("no such track in this relay")
        const theirs = yield* customer!.session.rpc.relay.produce({ callId, kind: "audio", rtpParameters: opus(8888) })
        expect(yield* invalid("capabilities without the track's codec", rpc.consume({
          callId,
          producerId: theirs.producerId,
          rtpCapabilities: { codecs: [{ kind: "video", mimeType: "video/VP8", preferredPayloadType: 96, clockRate: 90000 }] }
        }))).toBe("these RTP capabilities cannot receive this track")
        expect(yield* invalid("an unknown consumer", rpc.resumeConsumer({ callId, consumerId: "no-such-consumer" }))).toBe("no such received track")
        const fingerprint = { algorithm: "sha-256" as const, value: "AB:".repeat(31) + "AB" }
        yield* rpc.connectTransport({ callId, direction: "send", dtlsParameters: { role: "client", fingerprints: [fingerprint] } })
        yield* invalid("a second connect", rpc.connectTransport({ callId, direction: "send", dtlsParameters: { role: "client", fingerprints: [fingerprint] } }))

        for (const ssrc of [9001, 9002, 9003]) yield* rpc.produce({ callId, kind: "audio", rtpParameters: opus(ssrc) })
        expect(yield* invalid("a fifth track", rpc.produce({ callId, kind: "audio", rtpParameters: opus(9004) })))
          .toBe("at most 4 tracks per participant")

        // The contract's schemas bound every list and string: the SDK does not even send oversized parameters
        // (and the server decodes with the same schemas).
        const tooMany = Array.from({ length: 17 }, (_, i) => ({ mimeType: "audio/opus", payloadType: i, clockRate: 48000 }))
        const oversized = yield* Effect.exit(rpc.produce({ callId, kind: "audio", rtpParameters: { codecs: tooMany } }))
        expect(oversized._tag).toBe("Failure")
        expect(String(oversized)).toContain("maxItems(16)")

        // The relay still serves this call normally afterwards.
        expect((yield* customer!.session.rpc.relay.join({ callId })).producers.length).toBe(4)
      }))
  })

  it.scoped("oversized or malformed parameters from a client that bypasses the SDK are refused per request, naming the field", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const callId = "k_AAAAAAAAAAAAAAAAAAAAAA"
      const codec = { mimeType: "audio/opus", payloadType: 111, clockRate: 48000 }
      const refusals: ReadonlyArray<readonly [string, unknown, string]> = [
        ["relay.produce", { callId, kind: "audio", rtpParameters: { codecs: Array.from({ length: 17 }, () => codec) } }, "codecs"],
        ["relay.produce", {
          callId,
          kind: "audio",
          rtpParameters: { codecs: [{ ...codec, parameters: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, i])) }] }
        }, "at most 16 codec parameters"],
        ["relay.connectTransport", {
          callId,
          direction: "send",
          dtlsParameters: { fingerprints: [{ algorithm: "sha-256", value: "A".repeat(1000) }] }
        }, "fingerprints"],
        ["relay.consume", { callId, producerId: "p".repeat(65), rtpCapabilities: {} }, "producerId"],
        // Values mediasoup would take and then fail every consumer of the track with (or crash on).
        ["relay.produce", { callId, kind: "audio", rtpParameters: { codecs: [{ ...codec, parameters: { x: Number.NaN } }] } }, "Finite"],
        ["relay.produce", { callId, kind: "audio", rtpParameters: { codecs: [{ ...codec, parameters: { x: Number.POSITIVE_INFINITY } }] } }, "Finite"],
        ["relay.produce", {
          callId,
          kind: "video",
          rtpParameters: { codecs: [{ mimeType: "video/VP8", payloadType: 96, clockRate: 90000 }], encodings: [{ ssrc: 1, scalabilityMode: "S99T99" }] }
        }, "scalability mode"],
        ["relay.produce", {
          callId,
          kind: "video",
          rtpParameters: {
            codecs: [
              { mimeType: "video/VP8", payloadType: 96, clockRate: 90000 },
              { mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: { apt: 97 } }
            ]
          }
        }, "apt must name"],
        ["relay.consume", {
          callId,
          producerId: "p",
          rtpCapabilities: { codecs: [{ kind: "video", mimeType: "video/rtx", preferredPayloadType: 97, clockRate: 90000, parameters: { apt: 96 } }] }
        }, "apt must name"],
        ["relay.restartIce", { callId, direction: "sideways" }, "direction"],
        ["relay.join", { callId: "../../etc/passwd" }, "callId"]
      ]
      for (const [tag, payload, says] of refusals) {
        const reply = yield* rawRequest(server.url, tag, payload)
        expect(reply, tag).toMatchObject({ _tag: "Exit", exit: { _tag: "Failure", cause: { _tag: "Die" } } })
        expect(JSON.stringify(reply)).toContain(says)
      }
      expect(yield* server.healthz).toBe(200)
    }))

  it.effect("the server's output names no call, track, transport, address or key of the relay", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const output = server.stdout() + server.stderr()
      expect(output).toMatch(/^tessera listening on /)
      // Besides its start line, nothing at all: every id and ICE/DTLS value above stayed out of the logs.
      expect(output.split("\n").filter((line) => line.trim() !== "").length).toBe(1)
    }))
})
