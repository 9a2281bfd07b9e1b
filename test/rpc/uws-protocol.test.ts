// RPC over the uWS protocol with stock @effect/rpc clients, and what happens to input a stock client never sends.
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { Boom, ClientOnlyGroup, codec, connectClient, connectClientFor, rawPeer, startServer } from "./uws-fixture.js"

describe("uWS RPC protocol", () => {
  it.scopedLive("round-trips requests, streams and typed errors", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer()
      const client = yield* connectClient(url)
      expect(yield* client.Echo({ text: "hallo" })).toBe("hallo")
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(client.Count({ upTo: 5 })))).toEqual([1, 2, 3, 4, 5])
      const failure = yield* Effect.flip(client.Fail({ reason: "nope" }))
      expect(failure).toBeInstanceOf(Boom)
      expect(failure).toEqual(new Boom({ reason: "nope" }))
    }))

  it.scopedLive("serves many concurrent clients", () =>
    Effect.gen(function*() {
      const { server, url } = yield* startServer()
      const clients = yield* Effect.all(Array.from({ length: 40 }, () => connectClient(url)), { concurrency: 8 })
      const answers = yield* Effect.all(
        clients.flatMap((client, c) =>
          Array.from({ length: 10 }, (_, i) => client.Echo({ text: `${c}-${i}` }).pipe(Effect.map((text) => [text, `${c}-${i}`])))
        ),
        { concurrency: "unbounded" }
      )
      for (const [got, sent] of answers) expect(got).toBe(sent)
      const ids = yield* Effect.all(clients.map((client) => client.WhoAmI()), { concurrency: "unbounded" })
      expect(new Set(ids).size).toBe(40)
      expect(yield* server.connectionCount).toBe(40)
    }))

  it.scopedLive("stops the server-side stream when the client stops consuming", () =>
    Effect.gen(function*() {
      const { ticksStopped, url } = yield* startServer()
      const client = yield* connectClient(url)
      const first = yield* Stream.runCollect(Stream.take(client.Ticks(), 3))
      expect(Chunk.toReadonlyArray(first)).toEqual([0, 1, 2])
      yield* Deferred.await(ticksStopped)
      expect(yield* client.Echo({ text: "still here" })).toBe("still here")
    }))

  it.scopedLive("answers an unknown RPC with a defect and keeps serving", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer()
      const client = yield* connectClientFor(url, ClientOnlyGroup)
      const exit = yield* Effect.exit(client.Unknown())
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) && String(Cause.squash(exit.cause))).toContain("Unknown request tag: Unknown")
      expect(yield* client.Echo({ text: "same connection" })).toBe("same connection")
    }))

  it.scopedLive("answers a payload that does not match the schema with a defect for that request", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer()
      const peer = yield* rawPeer(url)
      const wire = codec()
      yield* peer.send(wire.encode({ _tag: "Request", id: "1", tag: "Echo", payload: { text: 42 }, headers: [] })!)
      yield* peer.send(wire.encode({ _tag: "Request", id: "2", tag: "Echo", payload: { text: "ok" }, headers: [] })!)
      const exits = new Map<string, any>()
      while (exits.size < 2) {
        for (const response of wire.decode(yield* peer.take) as Array<any>) exits.set(response.requestId, response.exit)
      }
      expect(exits.get("1")._tag).toBe("Failure")
      expect(exits.get("1").cause._tag).toBe("Die")
      expect(exits.get("2")).toEqual({ _tag: "Success", value: "ok" })
    }))

  describe("malformed frames close that connection with a Defect and 1007; others are unaffected", () => {
    const wire = codec()
    const cases: ReadonlyArray<[string, Uint8Array | string]> = [
      ["not msgpack", new Uint8Array([0xc1, 0xc1, 0xc1])],
      ["a truncated value", new Uint8Array([0xdb, 0x00, 0x00, 0x10, 0x00, 0x41, 0x42])],
      ["msgpack but not a message", wire.encode(42) as Uint8Array],
      ["a message the server cannot take", wire.encode({ _tag: "Ack", requestId: "not a number" }) as Uint8Array],
      ["a text frame", "{\"_tag\":\"Ping\"}"]
    ]
    for (const [name, frame] of cases) {
      it.scopedLive(name, () =>
        Effect.gen(function*() {
          const { url } = yield* startServer()
          const bystander = yield* connectClient(url)
          const peer = yield* rawPeer(url)
          yield* peer.send(frame)
          expect(yield* peer.closed).toBe(1007)
          expect(peer.received.flatMap((frame) => codec().decode(frame))).toEqual([
            { _tag: "Defect", defect: "Malformed RPC message" }
          ])
          expect(yield* bystander.Echo({ text: "unaffected" })).toBe("unaffected")
          const fresh = yield* connectClient(url)
          expect(yield* fresh.Echo({ text: "fresh" })).toBe("fresh")
        }))
    }
  })

  it.scopedLive("closes a connection that sends an oversized frame with 1009", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer({ maxMessageBytes: 1024 })
      const peer = yield* rawPeer(url)
      yield* peer.send(new Uint8Array(1500))
      expect(yield* peer.closed).toBe(1009)
      const client = yield* connectClient(url)
      expect(yield* client.Echo({ text: "x".repeat(500) })).toBe("x".repeat(500))
    }))

  it.scopedLive("cuts a connection that announces a frame far beyond the limit; the server stays up", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer({ maxMessageBytes: 1024 })
      const peer = yield* rawPeer(url)
      yield* peer.send(new Uint8Array(100_000))
      expect(yield* peer.closed).toBe(1006)
      const client = yield* connectClient(url)
      expect(yield* client.Echo({ text: "after" })).toBe("after")
    }))
})
