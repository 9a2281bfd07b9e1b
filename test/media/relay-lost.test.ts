/**
 * A relay whose media worker dies for good: the server's only worker is killed while its replacement cannot start
 * (the worker binary is a wrapper script that the test can make fail, as a broken binary would). Both parties of
 * the call are told at once (RelayFailed) instead of finding out when their ICE gives up, the room is gone, and
 * joining says MediaRelayUnavailable; once a worker can start again the pool's retries bring the relay back and the
 * parties can join and exchange media. A real server in this process, a real mediasoup worker, werift peers.
 */
import { expect, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { locateWorkerBinary } from "../../src/media/WorkerBinary.js"
import * as Sdk from "../../src/sdk/node.js"
import { acceptedCall, inProcessServerWith, next, practice, type RelayServer, relayParty } from "./relay-fixture.js"

class Server extends Context.Tag("test/RelayLostServer")<Server, RelayServer & { readonly blocked: string }>() {}

/** A worker binary that runs the real one unless `blocked` exists; mediasoup reads it from the environment. */
const ServerLive = Layer.merge(
  Layer.scoped(Server, Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(path.join(tmpdir(), "tessera-relay-lost-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    const real = yield* Effect.orDie(locateWorkerBinary())
    const blocked = path.join(dir, "blocked")
    const wrapper = path.join(dir, "mediasoup-worker")
    writeFileSync(wrapper, `#!/bin/sh\n[ -e '${blocked}' ] && exit 1\nexec '${real.path}' "$@"\n`)
    chmodSync(wrapper, 0o755)
    process.env["MEDIASOUP_WORKER_BIN"] = wrapper
    // Ports apart from the other test files' servers.
    const server = yield* inProcessServerWith({ TESSERA_RTC_MIN_PORT: "41000", TESSERA_RTC_MAX_PORT: "41999" })
    return { ...server, blocked }
  })),
  Sdk.NodeWebSocket
)

layer(ServerLive, { excludeTestServices: true, timeout: Duration.minutes(3) })("relay lost", (it) => {
  it.scoped("the worker dies and none will start: both parties get RelayFailed at once, joining is refused; a worker back, the relay serves", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const { host, customers: [customer] } = yield* practice(server.url, yield* server.enrollHost, 1)
      const callId = yield* acceptedCall(host, customer!)
      yield* Effect.all([relayParty(host, callId, "audio"), relayParty(customer!, callId, "audio")], { concurrency: "unbounded" })
      expect(Option.isSome(yield* server.rooms.routerOf(callId))).toBe(true)

      writeFileSync(server.blocked, "")
      const [worker] = yield* server.pool.workers
      process.kill(worker!.pid!, "SIGKILL")
      // Well before ICE would give up on the dead transports (about 30 s).
      yield* Effect.all([
        next(host, "RelayFailed", (e) => e.callId === callId, 10),
        next(customer!, "RelayFailed", (e) => e.callId === callId, 10)
      ], { concurrency: "unbounded" })
      expect(Option.isNone(yield* server.rooms.routerOf(callId))).toBe(true)
      expect((yield* server.pool.workers)[0]!.pid).toBeUndefined()
      const refused = yield* Effect.flip(host.session.rpc.relay.join({ callId }))
      expect(refused._tag).toBe("MediaRelayUnavailable")

      // The binary works again: the pool's next retry (backing off to 10 s) fills the slot, and the relay serves.
      rmSync(server.blocked)
      yield* Effect.gen(function*() {
        while ((yield* server.pool.workers)[0]!.pid === undefined) yield* Effect.sleep("200 millis")
      }).pipe(Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => new Error("no worker again") }), Effect.orDie)
      const [hostSide, customerSide] = yield* Effect.all(
        [relayParty(host, callId, "audio"), relayParty(customer!, callId, "audio")],
        { concurrency: "unbounded" }
      )
      expect(hostSide.consumer.producerId).toBe(customerSide.producerId)
      expect(customerSide.consumer.producerId).toBe(hostSide.producerId)
      expect(existsSync(server.blocked)).toBe(false)
    }))
})
