/**
 * Input no SDK sends, on raw WebSockets (the `ws` package) to a real server: unknown RPCs, malformed msgpack,
 * payloads that break the contract's schemas, frames over TESSERA_MAX_MESSAGE_BYTES. Each gets an answer or a close
 * on that one connection only; the server stays up (GET /healthz) and a device on another connection keeps working.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { Deferred, Duration, Effect, Layer, Queue } from "effect"
import { createRequire } from "node:module"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive, type TestServer } from "../support/server.js"
import { Host, HostLive, signIn } from "./story.js"

/** Below the 64 KiB default, so that a frame between the two shows the setting is honoured; above a full signal. */
const MAX_MESSAGE_BYTES = 56 * 1024
/** Short, so that a connection that never signs in is seen closed; longer than any other test here needs one. */
const AUTH_DEADLINE_SECONDS = 8

const Fixture = HostLive.pipe(
  Layer.provideMerge(Layer.merge(
    ServerLive({ TESSERA_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES), TESSERA_AUTH_DEADLINE_SECONDS: String(AUTH_DEADLINE_SECONDS) }),
    Sdk.NodeWebSocket
  ))
)

interface RawSocket {
  binaryType: string
  send(data: Uint8Array | string): void
  close(): void
  on(event: "open", listener: () => void): void
  on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): void
  on(event: "close", listener: (code: number) => void): void
  on(event: "error", listener: (error: Error) => void): void
}
const { WebSocket } = createRequire(import.meta.url)("ws") as { readonly WebSocket: new(url: string) => RawSocket }

/** A WebSocket speaking the RPC wire format by hand: msgpack messages in, decoded messages out. */
const rawClient = (server: TestServer) =>
  Effect.gen(function*() {
    const parser = RpcSerialization.msgPack.unsafeMake()
    const messages = yield* Queue.unbounded<Record<string, unknown>>()
    const closed = yield* Deferred.make<number>()
    const opened = yield* Deferred.make<void, Error>()
    const socket = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const ws = new WebSocket(server.url)
        ws.binaryType = "nodebuffer"
        ws.on("open", () => Deferred.unsafeDone(opened, Effect.void))
        ws.on("error", (error) => Deferred.unsafeDone(opened, Effect.fail(error)))
        ws.on("message", (data) => {
          for (const message of parser.decode(new Uint8Array(data))) messages.unsafeOffer(message as Record<string, unknown>)
        })
        ws.on("close", (code) => Deferred.unsafeDone(closed, Effect.succeed(code)))
        return ws
      }),
      (ws) => Effect.sync(() => ws.close())
    )
    yield* Effect.orDie(Deferred.await(opened))
    const within = <A, E>(effect: Effect.Effect<A, E>, what: string) =>
      effect.pipe(
        Effect.timeoutFail({ duration: Duration.seconds(AUTH_DEADLINE_SECONDS + 10), onTimeout: () => new Error(`no ${what} in time`) }),
        Effect.orDie
      )
    return {
      sendBytes: (bytes: Uint8Array | string) => Effect.sync(() => socket.send(bytes)),
      request: (id: string, tag: string, payload: unknown) =>
        Effect.sync(() => socket.send(parser.encode({ _tag: "Request", id, tag, payload, headers: [] }) as Uint8Array)),
      next: within(Queue.take(messages), "message"),
      closed: within(Deferred.await(closed), "close")
    }
  })

/** The server is up and serves devices as before. */
const serverStillWorks = Effect.gen(function*() {
  const server = yield* Server
  const host = yield* Host
  expect(yield* server.healthz).toBe(200)
  expect(yield* host.session.rpc.host.listCustomers()).toBeDefined()
  const fresh = yield* signIn(server, host)
  expect(yield* fresh.rpc.host.listCustomers()).toBeDefined()
})

/** A raw connection still answers RPCs: a challenge. */
const challengeWorks = (client: Effect.Effect.Success<ReturnType<typeof rawClient>>, id: string) =>
  Effect.gen(function*() {
    yield* client.request(id, "session.challenge", null)
    const reply = yield* client.next
    expect(reply).toMatchObject({ _tag: "Exit", requestId: id, exit: { _tag: "Success" } })
  })

describe("protocol abuse", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("an unknown RPC tag gets a Defect answer; the connection stays usable", () =>
      Effect.gen(function*() {
        const client = yield* rawClient(yield* Server)
        yield* client.request("1", "admin.dropEverything", {})
        const reply = yield* client.next
        expect(reply._tag).toBe("Defect")
        expect(JSON.stringify(reply)).toContain("Unknown request tag")
        yield* challengeWorks(client, "2")
        yield* serverStillWorks
      }))

    // (An oversized signalling payload decodes and gets a typed InvalidRequest: presence-and-calls.test.ts.)
    it.scoped("payloads that break the contract are refused per request", () =>
      Effect.gen(function*() {
        const client = yield* rawClient(yield* Server)
        const refusals: ReadonlyArray<readonly [string, unknown, string]> = [
          ["customer.activate", { activationCode: "X".repeat(65), devicePublicKey: new Uint8Array(8) }, "activationCode"],
          ["call.invite", { peer: "../../etc/passwd" }, "peer"],
          ["session.authenticate", { config: { body: { kind: "host" } }, signature: "no bytes" }, "config"],
          ["presence.set", "ready", "ready"]
        ]
        let id = 10
        for (const [tag, payload, says] of refusals) {
          const requestId = String(id++)
          yield* client.request(requestId, tag, payload)
          const reply = yield* client.next
          expect(reply).toMatchObject({ _tag: "Exit", requestId, exit: { _tag: "Failure", cause: { _tag: "Die" } } })
          expect(JSON.stringify(reply)).toContain(says)
        }
        yield* challengeWorks(client, String(id))
        yield* serverStillWorks
      }))

    it.scoped("a malformed msgpack frame closes that connection with 1007; the server stays up", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const frames: ReadonlyArray<Uint8Array | string> = [
          new Uint8Array([0xc1]), // a byte msgpack never uses
          new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff]), // a map of 4 billion entries, then nothing
          new Uint8Array([0x93, 0x01, 0x02]), // an array cut short
          new Uint8Array([0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // a well-formed string that is no RPC message
          "{\"_tag\":\"Request\"}" // a text frame
        ]
        for (const frame of frames) {
          const client = yield* rawClient(server)
          yield* client.sendBytes(frame)
          expect(yield* client.closed).toBe(1007)
        }
        yield* serverStillWorks
      }))

    it.scoped("a frame over TESSERA_MAX_MESSAGE_BYTES ends that connection (1009, or cut when far over); the server stays up", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const over = yield* rawClient(server)
        yield* over.request("1", "call.signal", { callId: "k_AAAAAAAAAAAAAAAAAAAAAA", payload: new Uint8Array(MAX_MESSAGE_BYTES + 1) })
        expect(yield* over.closed).toBe(1009)
        const farOver = yield* rawClient(server)
        yield* farOver.sendBytes(new Uint8Array(16 * MAX_MESSAGE_BYTES))
        expect([1006, 1009]).toContain(yield* farOver.closed)
        yield* serverStillWorks
      }))

    it.scoped("a burst of garbage from many connections at once leaves the server serving", () =>
      Effect.gen(function*() {
        const server = yield* Server
        yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) =>
            Effect.scoped(Effect.gen(function*() {
              const client = yield* rawClient(server)
              yield* client.sendBytes(i % 2 === 0 ? new Uint8Array([0xc1, i]) : new Uint8Array(2 * MAX_MESSAGE_BYTES - 1))
              yield* client.closed
            })),
          { concurrency: 20, discard: true }
        )
        yield* serverStillWorks
      }))

    it.scoped("a connection that never signs in is closed with 4003 after TESSERA_AUTH_DEADLINE_SECONDS; a signed-in one stays", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const opening = Date.now()
        const lingering = yield* rawClient(server)
        // Asking for challenges is not signing in.
        yield* challengeWorks(lingering, "1")
        const signedIn = yield* signIn(server, host)
        expect(yield* lingering.closed).toBe(4003)
        // Not before the deadline (the server's clock started after `opening`).
        expect(Date.now() - opening).toBeGreaterThanOrEqual(AUTH_DEADLINE_SECONDS * 1000 - 50)
        // Past the deadline, both signed-in devices are served on their connections.
        expect(yield* signedIn.rpc.host.listCustomers()).toBeDefined()
        yield* serverStillWorks
      }))

    it.scoped("none of it shows up in the server's output: no address, no payload", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const output = server.stdout().replace(/^tessera listening on .*$/m, "") + server.stderr()
        for (const text of ["127.0.0.1", "admin.dropEverything", "passwd", "XXXXXXXX", "k_AAAA"]) {
          expect(output.includes(text), `the server's output contains ${text}`).toBe(false)
        }
      }))
  })
})
