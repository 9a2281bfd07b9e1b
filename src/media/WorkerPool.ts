/**
 * The pool of mediasoup worker processes that relays media: one worker per core by default, each with the same RTC
 * port range. Routers go to the least-loaded live worker (fewest open routers, ties in turn). A worker that dies is
 * replaced in the same slot, and `WorkerReplaced { index }` is published so that the rooms whose routers lived on
 * it can be re-created; when the replacement cannot start, `WorkerLost { index }` is published at once (so that those
 * rooms move to another worker or end with a clear error instead of waiting) and the pool keeps trying. Closing the
 * pool's scope closes every worker.
 *
 * Transports are created by the rooms on the routers handed out here; SCTP (data channels) stays off everywhere,
 * which is mediasoup's default: Debian's usrsctp is older than the one mediasoup pins.
 */
import { Config, type ConfigError, Context, Data, Effect, Layer, PubSub, Queue, Schedule, Schema, Stream } from "effect"
import type { types } from "mediasoup"
import { availableParallelism } from "node:os"
import { MediaRelayUnavailable } from "../domain/errors.js"
import { WorkerBinary, type WorkerBinaryLocation } from "./WorkerBinary.js"

export interface WorkerPoolSettings {
  readonly workerCount: number
  /** Ports the workers bind ICE/DTLS/RTP sockets on (UDP and TCP), inclusive. */
  readonly rtcMinPort: number
  readonly rtcMaxPort: number
}

export class WorkerPoolConfig extends Context.Tag("tessera/media/WorkerPoolConfig")<
  WorkerPoolConfig,
  WorkerPoolSettings
>() {
  static readonly layer = (settings: WorkerPoolSettings): Layer.Layer<WorkerPoolConfig> =>
    Layer.succeed(WorkerPoolConfig, settings)

  /** TESSERA_MEDIA_WORKERS (default: number of cores), TESSERA_RTC_MIN_PORT / TESSERA_RTC_MAX_PORT (40000-49999). */
  static readonly fromEnv: Layer.Layer<WorkerPoolConfig, ConfigError.ConfigError> = Layer.effect(
    WorkerPoolConfig,
    Config.all({
      workerCount: Config.integer("TESSERA_MEDIA_WORKERS").pipe(
        Config.withDefault(availableParallelism()),
        Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 })
      ),
      rtcMinPort: Config.port("TESSERA_RTC_MIN_PORT").pipe(Config.withDefault(40000)),
      rtcMaxPort: Config.port("TESSERA_RTC_MAX_PORT").pipe(Config.withDefault(49999))
    }).pipe(
      Config.validate({
        message: "TESSERA_RTC_MIN_PORT must not be above TESSERA_RTC_MAX_PORT",
        validation: (settings) => settings.rtcMinPort <= settings.rtcMaxPort
      })
    )
  )
}

/** Published when the worker in slot `index` died and a fresh one took its place; its routers are gone. */
export class WorkerReplaced extends Data.TaggedClass("WorkerReplaced")<{ readonly index: number }> {}

/**
 * Published once when the worker in slot `index` died and its replacement failed to start: its routers are gone and
 * the slot stays empty while the pool retries (a WorkerReplaced follows if a retry succeeds).
 */
export class WorkerLost extends Data.TaggedClass("WorkerLost")<{ readonly index: number }> {}

/** What becomes of a slot whose worker died. */
export type WorkerChange = WorkerReplaced | WorkerLost

/** Part of the public contract (clients get it from the relay RPCs), so it lives with the contract's errors. */
export { MediaRelayUnavailable }

export class MediaWorkerStartFailed extends Schema.TaggedError<MediaWorkerStartFailed>()("MediaWorkerStartFailed", {
  reason: Schema.String
}) {
  override get message() { return `A mediasoup worker could not be started: ${this.reason}` }
}

export interface PooledRouter {
  readonly router: types.Router
  /** Slot of the worker that hosts the router: its `WorkerReplaced` means the router is gone. */
  readonly workerIndex: number
}

export interface WorkerStatus {
  readonly index: number
  /** Undefined while the slot is being refilled. */
  readonly pid: number | undefined
  readonly routers: number
}

type Mediasoup = typeof import("mediasoup")

/**
 * mediasoup 3.19.3 reads MEDIASOUP_WORKER_BIN once, when its module is first evaluated, and has no per-worker
 * option for the binary: set the variable, import, and make sure the module did pick up our path.
 */
const loadMediasoup = (binary: WorkerBinaryLocation): Effect.Effect<Mediasoup> =>
  Effect.gen(function*() {
    process.env["MEDIASOUP_WORKER_BIN"] = binary.path
    const mediasoup = yield* Effect.promise(() => import("mediasoup"))
    if (mediasoup.workerBin !== binary.path) {
      return yield* Effect.dieMessage(
        "mediasoup was imported before the worker binary was located, so it uses another binary; " +
          "load mediasoup only through the WorkerPool"
      )
    }
    return mediasoup
  })

interface Slot {
  worker: types.Worker | undefined
  routers: number
}

const make = Effect.gen(function*() {
  const binary = yield* WorkerBinary
  const settings = yield* WorkerPoolConfig
  const mediasoup = yield* loadMediasoup(binary)

  const replacements = yield* PubSub.unbounded<WorkerChange>()
  const deaths = yield* Queue.unbounded<{ readonly index: number; readonly worker: types.Worker }>()
  // Mutated only from synchronous code (Effect steps and mediasoup event callbacks), so no locking is needed.
  const slots: Array<Slot> = Array.from({ length: settings.workerCount }, () => ({ worker: undefined, routers: 0 }))
  let closing = false
  let nextTurn = 0

  const startWorker = (index: number): Effect.Effect<types.Worker, MediaWorkerStartFailed> =>
    Effect.tryPromise({
      try: () =>
        mediasoup.createWorker({
          logLevel: "warn",
          rtcMinPort: settings.rtcMinPort,
          rtcMaxPort: settings.rtcMaxPort,
          disableLiburing: true
        }),
      catch: (cause) => new MediaWorkerStartFailed({ reason: cause instanceof Error ? cause.message : String(cause) })
    }).pipe(
      Effect.tap((worker) =>
        Effect.sync(() => {
          worker.on("died", () => {
            if (!closing) Queue.unsafeOffer(deaths, { index, worker })
          })
          slots[index] = { worker, routers: 0 }
        })
      ),
      // Once spawned, a worker must land in its slot so that closing the pool closes it too.
      Effect.uninterruptible
    )

  const closeWorker = (worker: types.Worker): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      if (worker.subprocessClosed) return resume(Effect.void)
      worker.on("subprocessclose", () => resume(Effect.void))
      worker.close()
    }).pipe(Effect.timeoutOption("5 seconds"), Effect.asVoid)

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      closing = true
      const workers = slots.flatMap((slot) => (slot.worker ? [slot.worker] : []))
      return Effect.forEach(workers, closeWorker, { concurrency: "unbounded", discard: true })
    })
  )

  yield* Effect.forEach(slots, (_, index) => startWorker(index), { concurrency: "unbounded", discard: true })

  // Refill a slot whose worker died; keep trying (backing off up to 10 s) if the new worker cannot start.
  const replace = (index: number, dead: types.Worker): Effect.Effect<void> =>
    Effect.gen(function*() {
      if (closing || slots[index]?.worker !== dead) return
      slots[index] = { worker: undefined, routers: 0 }
      yield* Effect.logWarning("mediasoup worker died; starting a replacement").pipe(
        Effect.annotateLogs("workerIndex", index)
      )
      let lossAnnounced = false
      yield* startWorker(index).pipe(
        Effect.tapError((error) =>
          Effect.zipRight(
            Effect.logError(error.message),
            Effect.suspend(() => {
              if (lossAnnounced) return Effect.void
              lossAnnounced = true
              return PubSub.publish(replacements, new WorkerLost({ index }))
            })
          )
        ),
        Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")))),
        Effect.orDie
      )
      yield* PubSub.publish(replacements, new WorkerReplaced({ index }))
    })

  yield* Queue.take(deaths).pipe(
    Effect.flatMap(({ index, worker }) => replace(index, worker)),
    Effect.forever,
    Effect.forkScoped
  )

  /** The live slot with the fewest routers; among equals, the one whose turn is next. */
  const pickSlot = (): number | undefined => {
    let best: number | undefined
    for (let step = 0; step < slots.length; step++) {
      const index = (nextTurn + step) % slots.length
      const slot = slots[index]!
      if (!slot.worker || slot.worker.closed) continue
      if (best === undefined || slot.routers < slots[best]!.routers) best = index
    }
    if (best !== undefined) nextTurn = (best + 1) % slots.length
    return best
  }

  const tryCreateRouter = (
    mediaCodecs: ReadonlyArray<types.RouterRtpCodecCapability>,
    attemptsLeft: number
  ): Effect.Effect<PooledRouter, MediaRelayUnavailable> =>
    Effect.suspend(() => {
      const index = pickSlot()
      if (index === undefined || attemptsLeft === 0 || closing) return Effect.fail(new MediaRelayUnavailable())
      const slot = slots[index]!
      const worker = slot.worker!
      slot.routers++
      const release = () => {
        if (slots[index]?.worker === worker) slots[index]!.routers--
      }
      return Effect.tryPromise(() => worker.createRouter({ mediaCodecs: [...mediaCodecs] })).pipe(
        Effect.map((router): PooledRouter => {
          router.observer.once("close", release)
          return { router, workerIndex: index }
        }),
        Effect.catchAll((error) => {
          release()
          // mediasoup rejects a bad codec list with a TypeError: a bug in the caller. Anything else means the
          // worker died under the request (maybe before its exit was noticed): try the next one.
          return error.error instanceof TypeError
            ? Effect.die(error.error)
            : tryCreateRouter(mediaCodecs, attemptsLeft - 1)
        })
      )
    })

  return {
    settings,
    /** A router on the least-loaded live worker; fails with MediaRelayUnavailable when no worker can take it. */
    createRouter: (mediaCodecs: ReadonlyArray<types.RouterRtpCodecCapability>) =>
      tryCreateRouter(mediaCodecs, settings.workerCount),
    /**
     * Every WorkerReplaced and WorkerLost from the moment of subscription, as a queue that lives as long as the given
     * scope.
     */
    subscribeReplacements: PubSub.subscribe(replacements),
    /** Replacements as a stream (each run of the stream subscribes afresh). */
    replacements: Stream.fromPubSub(replacements),
    workers: Effect.sync((): ReadonlyArray<WorkerStatus> =>
      slots.map((slot, index) => ({
        index,
        pid: slot.worker && !slot.worker.closed ? slot.worker.pid : undefined,
        routers: slot.routers
      }))
    )
  } as const
})

export class WorkerPool extends Effect.Service<WorkerPool>()("tessera/media/WorkerPool", { scoped: make }) {
  /** The pool as the server runs it: binary from MEDIASOUP_WORKER_BIN or the build cache, settings from the env. */
  static readonly fromEnv = WorkerPool.Default.pipe(
    Layer.provide(WorkerBinary.Default),
    Layer.provide(WorkerPoolConfig.fromEnv)
  )
}
