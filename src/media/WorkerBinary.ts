/**
 * Where the mediasoup worker binary is. mediasoup 3.19.3 cannot fetch or build its own worker on our machines, so
 * scripts/build-mediasoup-worker.sh builds it once per machine into a cache keyed by the hash of the patch scripts;
 * MEDIASOUP_WORKER_BIN overrides that (Docker images, CI, a binary built elsewhere). Without a usable binary the
 * media relay, and so the server, refuses to start with a message that says how to build it.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { accessSync, constants, readdirSync, readFileSync, statSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const MEDIASOUP_VERSION = "3.19.3"
export const WORKER_BUILD_COMMAND = "bash scripts/build-mediasoup-worker.sh"

export class MediasoupWorkerMissing extends Schema.TaggedError<MediasoupWorkerMissing>()("MediasoupWorkerMissing", {
  path: Schema.String,
  reason: Schema.Literal("not-found", "not-executable", "patch-scripts-missing")
}) {
  override get message() {
    const what = this.reason === "not-executable"
      ? `The mediasoup worker at ${this.path} is not an executable file.`
      : this.reason === "patch-scripts-missing"
      ? `Cannot tell where the mediasoup worker is cached: the patch scripts in ${this.path} are missing.`
      : `The mediasoup worker binary was not found at ${this.path}.`
    return `${what} Build it with \`${WORKER_BUILD_COMMAND}\` (takes several minutes once per machine), ` +
      `or set MEDIASOUP_WORKER_BIN to an existing mediasoup ${MEDIASOUP_VERSION} worker binary.`
  }
}

export interface WorkerBinaryLocation {
  readonly path: string
  readonly source: "MEDIASOUP_WORKER_BIN" | "cache"
}

export interface LocateOptions {
  /** Environment to read MEDIASOUP_WORKER_BIN, XDG_CACHE_HOME and HOME from; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Folder with the patch scripts whose hash names the cache entry; defaults to the repository's scripts/mediasoup. */
  readonly patchScriptsDir?: string
}

const defaultPatchScriptsDir = (): string => fileURLToPath(new URL("../../scripts/mediasoup/", import.meta.url))

/** Same key as the build script: sha256 over the *.py patch scripts in name order, first 16 hex digits. */
const patchHash = (dir: string): Effect.Effect<string, MediasoupWorkerMissing> =>
  Effect.try({
    try: () => {
      const names = readdirSync(dir).filter((name) => name.endsWith(".py")).sort()
      if (names.length === 0) throw new Error("no patch scripts")
      const hash = createHash("sha256")
      for (const name of names) hash.update(readFileSync(join(dir, name)))
      return hash.digest("hex").slice(0, 16)
    },
    catch: () => new MediasoupWorkerMissing({ path: dir, reason: "patch-scripts-missing" })
  })

/** The path at which the build script caches the worker on this machine (whether or not it is there). */
export const cachedWorkerPath = (options: LocateOptions = {}): Effect.Effect<string, MediasoupWorkerMissing> =>
  Effect.gen(function*() {
    const env = options.env ?? process.env
    const hash = yield* patchHash(options.patchScriptsDir ?? defaultPatchScriptsDir())
    const cacheHome = env["XDG_CACHE_HOME"] || join(env["HOME"] || homedir(), ".cache")
    return join(cacheHome, "tessera", `mediasoup-worker-${MEDIASOUP_VERSION}-${hash}`, "mediasoup-worker")
  })

const checkExecutable = (path: string): Effect.Effect<string, MediasoupWorkerMissing> =>
  Effect.try({
    try: () => statSync(path),
    catch: () => new MediasoupWorkerMissing({ path, reason: "not-found" })
  }).pipe(
    Effect.filterOrFail(
      (stat) => stat.isFile() && isExecutable(path),
      () => new MediasoupWorkerMissing({ path, reason: "not-executable" })
    ),
    Effect.as(path)
  )

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** MEDIASOUP_WORKER_BIN when set (it must then exist and be executable), else the build script's cache entry. */
export const locateWorkerBinary = (
  options: LocateOptions = {}
): Effect.Effect<WorkerBinaryLocation, MediasoupWorkerMissing> =>
  Effect.gen(function*() {
    const fromEnv = (options.env ?? process.env)["MEDIASOUP_WORKER_BIN"]
    if (fromEnv) return { path: yield* checkExecutable(fromEnv), source: "MEDIASOUP_WORKER_BIN" as const }
    return { path: yield* checkExecutable(yield* cachedWorkerPath(options)), source: "cache" as const }
  })

/** The located worker binary, as a service so that the pool's need for it shows in its layer. */
export class WorkerBinary extends Context.Tag("tessera/media/WorkerBinary")<WorkerBinary, WorkerBinaryLocation>() {
  /** Locates the binary from the process environment and the machine's cache. */
  static readonly Default: Layer.Layer<WorkerBinary, MediasoupWorkerMissing> = Layer.effect(
    WorkerBinary,
    locateWorkerBinary()
  )
  static readonly layer = (options: LocateOptions): Layer.Layer<WorkerBinary, MediasoupWorkerMissing> =>
    Layer.effect(WorkerBinary, locateWorkerBinary(options))
}
