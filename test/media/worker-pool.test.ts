/**
 * The mediasoup worker pool with real worker processes, found the way the server finds them (MEDIASOUP_WORKER_BIN or
 * the build script's cache; build with `bash scripts/build-mediasoup-worker.sh`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Queue } from "effect"
import type { types } from "mediasoup"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { locateWorkerBinary, MediasoupWorkerMissing, WorkerBinary } from "../../src/media/WorkerBinary.js"
import { WorkerPool, WorkerPoolConfig, WorkerReplaced } from "../../src/media/WorkerPool.js"

const mediaCodecs: Array<types.RouterRtpCodecCapability> = [
  { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 },
  { kind: "video", mimeType: "video/VP8", clockRate: 90000 }
]

const settings = { workerCount: 2, rtcMinPort: 47000, rtcMaxPort: 47999 }
const poolLayer = WorkerPool.Default.pipe(
  Layer.provide(WorkerBinary.Default),
  Layer.provide(WorkerPoolConfig.layer(settings))
)

const tcpAccepts = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

const inRange = (port: number) => port >= settings.rtcMinPort && port <= settings.rtcMaxPort

describe("WorkerPool", () => {
  it.scopedLive("starts one process per slot and serves routers with WebRtc and Plain transports", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool
      const workers = yield* pool.workers
      expect(workers).toHaveLength(2)
      const pids = workers.map((worker) => worker.pid)
      expect(pids.every((pid) => typeof pid === "number" && pid > 0)).toBe(true)
      expect(new Set(pids).size).toBe(2)

      const first = yield* pool.createRouter(mediaCodecs)
      const second = yield* pool.createRouter(mediaCodecs)
      // Least loaded: the second router goes to the other worker.
      expect(new Set([first.workerIndex, second.workerIndex]).size).toBe(2)
      expect((yield* pool.workers).map((worker) => worker.routers)).toEqual([1, 1])
      const mimeTypes = first.router.rtpCapabilities.codecs?.map((codec) => codec.mimeType)
      expect(mimeTypes).toEqual(expect.arrayContaining(["audio/opus", "video/VP8"]))

      const webRtc = yield* Effect.promise(() =>
        first.router.createWebRtcTransport({
          listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }, { protocol: "tcp", ip: "127.0.0.1" }]
        })
      )
      const udp = webRtc.iceCandidates.find((candidate) => candidate.protocol === "udp")
      const tcp = webRtc.iceCandidates.find((candidate) => candidate.protocol === "tcp")
      expect(udp && inRange(udp.port)).toBe(true)
      expect(tcp && inRange(tcp.port)).toBe(true)
      expect(yield* tcpAccepts(tcp!.port)).toBe(true)
      expect(webRtc.sctpParameters).toBeUndefined()

      const plain = yield* Effect.promise(() =>
        second.router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" }, rtcpMux: true })
      )
      expect(inRange(plain.tuple.localPort)).toBe(true)

      first.router.close()
      expect((yield* pool.workers).map((worker) => worker.routers).sort()).toEqual([0, 1])
    }).pipe(Effect.provide(poolLayer)))

  it.scopedLive("replaces a killed worker, announces it, and keeps serving", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool
      const replaced = yield* pool.subscribeReplacements
      const routers = [yield* pool.createRouter(mediaCodecs), yield* pool.createRouter(mediaCodecs)]
      const victim = routers[0]!
      const before = yield* pool.workers
      const victimPid = before[victim.workerIndex]!.pid!

      process.kill(victimPid, "SIGKILL")

      const event = yield* Queue.take(replaced)
      expect(event).toEqual(new WorkerReplaced({ index: victim.workerIndex }))
      expect(victim.router.closed).toBe(true)
      expect(routers[1]!.router.closed).toBe(false)

      const after = yield* pool.workers
      const newPid = after[victim.workerIndex]!.pid
      expect(typeof newPid).toBe("number")
      expect(newPid).not.toBe(victimPid)
      expect(after[victim.workerIndex]!.routers).toBe(0)

      // The fresh worker takes the next router (it is the least loaded) and it works.
      const fresh = yield* pool.createRouter(mediaCodecs)
      expect(fresh.workerIndex).toBe(victim.workerIndex)
      const transport = yield* Effect.promise(() =>
        fresh.router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" } })
      )
      expect(inRange(transport.tuple.localPort)).toBe(true)
    }).pipe(Effect.provide(poolLayer)))

  it.scopedLive("closes its worker processes with its scope", () =>
    Effect.gen(function*() {
      const pids = yield* Effect.scoped(
        WorkerPool.pipe(Effect.flatMap((pool) => pool.workers), Effect.provide(poolLayer))
      )
      for (const worker of pids) expect(() => process.kill(worker.pid!, 0)).toThrow()
    }))
})

describe("WorkerBinary", () => {
  const withTempDir = <A, E>(use: (dir: string) => Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-worker-binary-"))),
      use,
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )

  it.effect("the server and the tests find the worker the same way, and it exists", () =>
    Effect.gen(function*() {
      const location = yield* locateWorkerBinary()
      expect(location.source).toBe(process.env["MEDIASOUP_WORKER_BIN"] ? "MEDIASOUP_WORKER_BIN" : "cache")
    }))

  it.effect("a MEDIASOUP_WORKER_BIN that does not exist is refused with the build command", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(locateWorkerBinary({ env: { MEDIASOUP_WORKER_BIN: "/nonexistent/mediasoup-worker" } }))
      expect(error).toBeInstanceOf(MediasoupWorkerMissing)
      expect(error.reason).toBe("not-found")
      expect(error.message).toContain("bash scripts/build-mediasoup-worker.sh")
    }))

  it.effect("a MEDIASOUP_WORKER_BIN that is not executable is refused", () =>
    withTempDir((dir) =>
      Effect.gen(function*() {
        const path = join(dir, "mediasoup-worker")
        writeFileSync(path, "not a program")
        chmodSync(path, 0o644)
        const error = yield* Effect.flip(locateWorkerBinary({ env: { MEDIASOUP_WORKER_BIN: path } }))
        expect(error.reason).toBe("not-executable")
        expect(error.message).toContain("bash scripts/build-mediasoup-worker.sh")
      })
    ))

  it.effect("without a variable and without a built cache entry the pool refuses to start", () =>
    withTempDir((dir) =>
      Effect.gen(function*() {
        const missing = WorkerPool.Default.pipe(
          Layer.provide(WorkerBinary.layer({ env: { XDG_CACHE_HOME: dir } })),
          Layer.provide(WorkerPoolConfig.layer(settings))
        )
        const error = yield* Effect.flip(Effect.scoped(Layer.build(missing)))
        expect(error).toBeInstanceOf(MediasoupWorkerMissing)
        expect(error.message).toContain(`${dir}/tessera/mediasoup-worker-3.19.3-`)
        expect(error.message).toContain("bash scripts/build-mediasoup-worker.sh")
      })
    ))
})
