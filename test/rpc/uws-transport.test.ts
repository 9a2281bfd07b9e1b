// The uWS transport around RPC: HTTP routes, closing a chosen client, addresses and disconnect notifications,
// backpressure against a peer that stops reading, graceful shutdown, TLS.
import { describe, expect, it } from "@effect/vitest"
import * as RpcClientError from "@effect/rpc/RpcClientError"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { randomBytes } from "node:crypto"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Tls from "node:tls"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CloseCode } from "../../src/rpc/UwsServer.js"
import { codec, connectClient, rawPeer, stalledPeer, startServer } from "./uws-fixture.js"

const http = (port: number, path: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, init)
    return { status: response.status, type: response.headers.get("content-type"), body: await response.text() }
  })

/** The status a WebSocket upgrade request gets: 101 when it would become a WebSocket (the socket is then dropped). */
const upgradeStatus = (port: number) =>
  Effect.async<number>((resume) => {
    const request = Http.request({
      host: "127.0.0.1",
      port,
      path: "/rpc",
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64")
      }
    })
    request.on("upgrade", (_response, socket) => {
      socket.destroy()
      resume(Effect.succeed(101))
    })
    request.on("response", (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode ?? 0))
    })
    request.on("error", () => resume(Effect.succeed(-1)))
    request.end()
  })

describe("uWS transport", () => {
  it.scopedLive("serves HTTP routes next to the WebSocket endpoint", () =>
    Effect.gen(function*() {
      const { server, url } = yield* startServer({ maxMessageBytes: 1024 })
      const interrupted = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      yield* server.addRoute("get", "/healthz", () =>
        Effect.succeed({ status: 200, headers: { "content-type": "text/plain" }, body: "ok" }))
      yield* server.addRoute("post", "/echo", (request) =>
        Effect.succeed({ status: 201, body: request.body }))
      yield* server.addRoute("get", "/static/*", (request) =>
        Effect.succeed({ status: 200, body: `file ${request.path} ${request.query}` }))
      yield* server.addRoute("get", "/broken", () => Effect.die("bug"))
      yield* server.addRoute("get", "/slow", () =>
        Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        ))

      expect(yield* http(server.port, "/healthz")).toEqual({ status: 200, type: "text/plain", body: "ok" })
      expect(yield* http(server.port, "/echo", { method: "POST", body: "x".repeat(3000).slice(0, 1000) }))
        .toMatchObject({ status: 201, body: "x".repeat(1000) })
      expect(yield* http(server.port, "/static/app.js?v=2")).toMatchObject({ status: 200, body: "file /static/app.js v=2" })
      expect((yield* http(server.port, "/nothing")).status).toBe(404)
      expect((yield* http(server.port, "/rpc")).status).toBe(404)
      expect((yield* http(server.port, "/broken")).status).toBe(500)
      expect((yield* http(server.port, "/echo", { method: "POST", body: "x".repeat(5000) })).status).toBe(413)

      // A request the client gives up on interrupts its handler; the server goes on.
      const abort = new AbortController()
      const pending = fetch(`http://127.0.0.1:${server.port}/slow`, { signal: abort.signal }).catch(() => "aborted")
      yield* Deferred.await(started)
      abort.abort()
      expect(yield* Effect.promise(() => pending)).toBe("aborted")
      yield* Deferred.await(interrupted)
      expect((yield* http(server.port, "/healthz")).status).toBe(200)

      const client = yield* connectClient(url)
      expect(yield* client.Echo({ text: "rpc" })).toBe("rpc")
    }))

  it.scopedLive("refuses a port another server is listening on instead of sharing it", () =>
    Effect.gen(function*() {
      const first = yield* startServer()
      const second = yield* Effect.flip(Effect.scoped(startServer({ port: first.server.port })))
      expect(second).toMatchObject({ _tag: "UwsListenError", reason: "ListenFailed" })
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${first.server.port}/no-such-route`))
      expect(response.status).toBe(404)
    }))

  it.scopedLive("closes a chosen client with the given code, reports its disconnect and forgets its address", () =>
    Effect.gen(function*() {
      const { server, url } = yield* startServer()
      const closed = yield* server.subscribeDisconnects
      const kicked = yield* connectClient(url)
      const other = yield* connectClient(url)
      const kickedId = yield* kicked.WhoAmI()
      const otherId = yield* other.WhoAmI()
      expect(server.remoteAddressOf(kickedId)).toBe("127.0.0.1")

      const ticks = yield* kicked.Ticks().pipe(Stream.runDrain, Effect.flip, Effect.fork)
      yield* server.closeClient(kickedId, 4001, "revoked")
      const error = yield* ticks.await.pipe(Effect.flatten)
      expect(error).toBeInstanceOf(RpcClientError.RpcClientError)
      expect((error as RpcClientError.RpcClientError).cause).toMatchObject({ reason: "Close", code: 4001 })

      expect(yield* Queue.take(closed)).toBe(kickedId)
      expect(server.remoteAddressOf(kickedId)).toBeUndefined()
      expect(yield* other.Echo({ text: "unaffected" })).toBe("unaffected")
      expect(server.remoteAddressOf(otherId)).toBe("127.0.0.1")

      const exit = yield* Effect.exit(server.closeClient(otherId, 1006, "reserved"))
      expect(Exit.isFailure(exit)).toBe(true)
    }))

  it.scopedLive("closes a connection not admitted in time with 4003, keeps an admitted one, refuses upgrades beyond the pending bound", () =>
    Effect.gen(function*() {
      const { server, url } = yield* startServer({ admissionDeadlineSeconds: 1, maxPendingConnections: 2 })
      const admitted = yield* connectClient(url)
      yield* server.admit(yield* admitted.WhoAmI())
      const first = yield* rawPeer(url)
      const second = yield* rawPeer(url)
      // Two pending: a third is refused before it becomes a WebSocket; the admitted one does not count.
      expect(yield* upgradeStatus(server.port)).toBe(503)
      expect(yield* first.closed).toBe(4003)
      expect(yield* second.closed).toBe(4003)
      expect(yield* upgradeStatus(server.port)).toBe(101)
      expect(yield* admitted.Echo({ text: "past the deadline" })).toBe("past the deadline")
    }))

  it.scopedLive("closes a peer that stops reading with 1008 instead of queueing without bound", () =>
    Effect.gen(function*() {
      const maxQueuedBytes = 512 * 1024
      // The bound on requests in flight is out of the way: this is about answers that cannot be delivered.
      const { server } = yield* startServer({ maxBackpressureBytes: 64 * 1024, maxQueuedBytes, maxRequestsInFlight: 10_000 })
      const closed = yield* server.subscribeDisconnects
      const peer = yield* stalledPeer(server.port)
      const wire = codec()
      // 64 KiB per answer, 50 MiB asked for in all: far more than the socket buffers of the loopback hold.
      for (let id = 1; id <= 800; id++) {
        peer.send(wire.encode({ _tag: "Request", id: String(id), tag: "Blob", payload: {}, headers: [] }) as Uint8Array)
      }
      yield* Queue.take(closed)
      expect(yield* server.connectionCount).toBe(0)
      expect(yield* peer.resume).toBe(CloseCode.PolicyViolation)
    }))

  it.scopedLive("closes a connection that pipelines more unanswered requests than the bound with 1008; others go on", () =>
    Effect.gen(function*() {
      const { url } = yield* startServer({ maxRequestsInFlight: 8 })
      const wire = codec()
      const request = (id: number, tag: string, payload: object = {}) =>
        wire.encode({ _tag: "Request", id: String(id), tag, payload, headers: [] }) as Uint8Array
      // Everything a peer was sent so far, decoded in order by a parser of its own.
      const messages = (peer: { readonly received: ReadonlyArray<Uint8Array | string> }) => {
        const parser = codec()
        return peer.received.flatMap((frame) => parser.decode(frame as Uint8Array)) as Array<Record<string, any>>
      }
      const answerTo = (peer: { readonly received: ReadonlyArray<Uint8Array | string> }, id: number) =>
        Effect.gen(function*() {
          for (;;) {
            const exit = messages(peer).find((m) => m["_tag"] === "Exit" && m["requestId"] === String(id))
            if (exit) return exit
            yield* Effect.sleep("5 millis")
          }
        }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`no answer to ${id}`) }), Effect.orDie)

      // Up to the bound is fine, answered or not (a stream counts until it ends): 7 ticking streams and an echo.
      const patient = yield* rawPeer(url)
      for (let id = 1; id <= 7; id++) yield* patient.send(request(id, "Ticks"))
      yield* patient.send(request(8, "Echo", { text: "eighth" }))
      expect((yield* answerTo(patient, 8))["exit"]).toMatchObject({ _tag: "Success", value: "eighth" })
      // An answered request frees its place: more echoes, one at a time, keep the connection open.
      for (let id = 9; id <= 20; id++) {
        yield* patient.send(request(id, "Echo", { text: "again" }))
        yield* answerTo(patient, id)
      }
      // One past the bound, all in one frame: a Defect that says why, and 1008.
      const greedy = yield* rawPeer(url)
      yield* greedy.send(new Uint8Array(Buffer.concat(Array.from({ length: 9 }, (_, i) => request(i + 1, "Ticks")))))
      expect(yield* greedy.closed).toBe(CloseCode.PolicyViolation)
      expect(messages(greedy)).toContainEqual({ _tag: "Defect", defect: "Too many requests in flight" })
      // Nor may an id be reused while its request is in flight, written the same or otherwise ("07" is 7): the
      // server would queue the second behind the first without counting it.
      for (const again of ["5", "05"]) {
        const reuser = yield* rawPeer(url)
        yield* reuser.send(request(5, "Ticks"))
        yield* reuser.send(wire.encode({ _tag: "Request", id: again, tag: "Echo", payload: { text: "queued" }, headers: [] }) as Uint8Array)
        expect(yield* reuser.closed).toBe(CloseCode.PolicyViolation)
        expect(messages(reuser)).toContainEqual({ _tag: "Defect", defect: "Request id already in flight" })
      }
      // Once answered, an id may come again (as a stock client's counter never does, but nothing is queued by it).
      for (let round = 0; round < 3; round++) {
        yield* patient.send(request(100, "Echo", { text: "reused" }))
        yield* answerTo(patient, 100)
        while (messages(patient).filter((m) => m["_tag"] === "Exit" && m["requestId"] === "100").length <= round) {
          yield* Effect.sleep("5 millis")
        }
      }
      // The other connections are unaffected.
      const other = yield* connectClient(url)
      expect(yield* other.Echo({ text: "still here" })).toBe("still here")
      yield* patient.send(request(21, "Echo", { text: "patient" }))
      expect((yield* answerTo(patient, 21))["exit"]).toMatchObject({ _tag: "Success", value: "patient" })
    }))

  it.scopedLive("closes every client with 1001 on shutdown and stops listening", () =>
    Effect.gen(function*() {
      const serverScope = yield* Scope.make()
      const { server, url } = yield* startServer().pipe(Scope.extend(serverScope))
      const peers = yield* Effect.all([rawPeer(url), rawPeer(url)])
      const client = yield* connectClient(url)
      yield* client.Echo({ text: "up" })
      yield* Scope.close(serverScope, Exit.void)
      for (const peer of peers) expect(yield* peer.closed).toBe(1001)
      const refused = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${server.port}/healthz`).then(() => "answered", () => "refused"))
      expect(refused).toBe("refused")
    }))

  it.scopedLive("serves HTTPS and WebSocket upgrades over TLS with a configured certificate", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-tls-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const certFile = join(dir, "cert.pem")
      const keyFile = join(dir, "key.pem")
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=localhost", "-keyout", keyFile, "-out", certFile
      ], { stdio: "ignore" })
      const { server } = yield* startServer({ tls: { certFile, keyFile } })
      yield* server.addRoute("get", "/healthz", () => Effect.succeed({ status: 200, body: "ok" }))
      const body = yield* Effect.async<string>((resume) => {
        Https.get({ host: "127.0.0.1", port: server.port, path: "/healthz", rejectUnauthorized: false }, (response) => {
          let text = ""
          response.on("data", (chunk) => (text += chunk))
          response.on("end", () => resume(Effect.succeed(text)))
        })
      })
      expect(body).toBe("ok")
      const upgrade = yield* Effect.async<string>((resume) => {
        const socket = Tls.connect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false }, () => {
          socket.write(
            "GET /rpc HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
          )
        })
        socket.once("data", (chunk: Buffer) => {
          socket.destroy()
          resume(Effect.succeed(chunk.toString().split("\r\n")[0]!))
        })
      })
      expect(upgrade).toBe("HTTP/1.1 101 Switching Protocols")

      const failed = yield* Effect.flip(startServer({ tls: { certFile: join(dir, "missing.pem"), keyFile } }))
      expect(failed.reason).toBe("TlsFilesUnreadable")
    }))
})
