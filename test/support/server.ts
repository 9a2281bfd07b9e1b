/**
 * A real tessera server process for end-to-end tests: `node --import tsx src/server/main.ts` on a free port, its own
 * fresh Postgres database and a random master key, stopped (SIGTERM) when the scope closes. `restart()` starts a new
 * process on the same database and key. Everything the processes write is kept, for failure messages and for the
 * privacy checks of their output.
 *
 *   const server = yield* startTestServer({ TESSERA_RING_SECONDS: "1" })
 *   yield* Sdk.enrollHostDevice(server.url, code, store)
 */
import { ConfigProvider, Context, Data, Deferred, Duration, Effect, Layer } from "effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Enrollment } from "../../src/actors/Enrollment.js"
import { AccountsLive } from "../../src/server/Accounts.js"
import { readServerSettings } from "../../src/server/Config.js"
import { testDatabaseUrl } from "./database.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** tsx compiles the server on the fly: a few seconds alone, several times that with two test files in parallel. */
const START_TIMEOUT = Duration.seconds(90)
const STOP_TIMEOUT = Duration.seconds(20)
const START_LINE = /^tessera listening on (wss?):\/\/([^/\s]+):(\d+)\/rpc \(([^)]*)\)$/m

export class ServerStartFailed extends Data.TaggedError("ServerStartFailed")<{ readonly message: string }> {}

export interface ProcessExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface TestServer {
  /** The RPC endpoint of the running process; a restart changes the port. */
  readonly url: string
  /** `http://127.0.0.1:PORT` of the running process, for /healthz and /metrics. */
  readonly httpUrl: string
  readonly port: number
  readonly databaseUrl: string
  /** The settings the processes run with (DATABASE_URL, TESSERA_MASTER_KEY, ...), e.g. for the operator's tools. */
  readonly env: Readonly<Record<string, string>>
  /** Everything every process of this server wrote so far. */
  readonly stdout: () => string
  readonly stderr: () => string
  /** SIGTERM, then waits for the process to exit (SIGKILL after 20 s). */
  readonly stop: Effect.Effect<ProcessExit>
  /** Stops the running process (if any) and starts a new one on the same database and master key. */
  readonly restart: Effect.Effect<void, ServerStartFailed>
  readonly healthz: Effect.Effect<number>
}

interface Running {
  readonly child: ChildProcess
  readonly exited: Deferred.Deferred<ProcessExit>
  readonly port: number
}

/** The environment of the child: the caller's, minus any tessera settings, plus exactly these. */
const childEnv = (settings: Readonly<Record<string, string>>) => {
  const env: Record<string, string | undefined> = { ...process.env }
  for (const name of Object.keys(env)) {
    if (name === "DATABASE_URL" || name === "PORT" || name === "HOST" || name.startsWith("TESSERA_")) delete env[name]
  }
  return { ...env, ...settings }
}

/**
 * Starts a server for the current scope. `settings` override the defaults (PORT=0, HOST=127.0.0.1, one media
 * worker, a fresh database and master key), e.g. `{ TESSERA_CODE_ATTEMPTS: "3" }`.
 */
export const startTestServer = (
  settings: Readonly<Record<string, string>> = {}
): Effect.Effect<TestServer, ServerStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const databaseUrl = yield* testDatabaseUrl
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-server-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const env: Record<string, string> = {
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: databaseUrl,
      TESSERA_MASTER_KEY: randomBytes(32).toString("base64"),
      TESSERA_DATA_DIR: dataDir,
      TESSERA_MEDIA_WORKERS: "1",
      ...settings
    }
    let stdout = ""
    let stderr = ""
    let running: Running | undefined

    const spawnProcess = Effect.gen(function*() {
      const exited = yield* Deferred.make<ProcessExit>()
      const started = yield* Deferred.make<number, ServerStartFailed>()
      const child = spawn(process.execPath, ["--import", "tsx", "src/server/main.ts"], {
        cwd: ROOT,
        env: childEnv(env),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let ownStdout = ""
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk
        ownStdout += chunk
        const line = START_LINE.exec(ownStdout)
        if (line) Deferred.unsafeDone(started, Effect.succeed(Number(line[3])))
      })
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
      child.on("exit", (code, signal) => {
        Deferred.unsafeDone(exited, Effect.succeed({ code, signal }))
        Deferred.unsafeDone(
          started,
          Effect.fail(new ServerStartFailed({ message: `server exited (${code ?? signal}) before listening:\n${stderr}` }))
        )
      })
      child.on("error", (error) =>
        Deferred.unsafeDone(started, Effect.fail(new ServerStartFailed({ message: `cannot spawn the server: ${error.message}` }))))
      running = { child, exited, port: 0 }
      const port = yield* Deferred.await(started).pipe(
        Effect.timeoutFail({
          duration: START_TIMEOUT,
          onTimeout: () => new ServerStartFailed({ message: `server did not start within 90 s:\n${stderr}` })
        }),
        Effect.tapError(() => stopProcess)
      )
      running = { child, exited, port }
      // The printed port must be the bound one: this very process answers on it.
      const status = yield* healthzOn(port)
      if (status !== 200) {
        yield* stopProcess
        return yield* new ServerStartFailed({ message: `the start line names port ${port}, but GET /healthz there gave ${status}` })
      }
    })

    const stopProcess: Effect.Effect<ProcessExit> = Effect.suspend(() => {
      const current = running
      if (current === undefined) return Effect.succeed({ code: null, signal: null })
      return Effect.gen(function*() {
        if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill("SIGTERM")
        const exit = yield* Deferred.await(current.exited).pipe(
          Effect.timeout(STOP_TIMEOUT),
          Effect.catchTag("TimeoutException", () =>
            Effect.zipRight(Effect.sync(() => current.child.kill("SIGKILL")), Deferred.await(current.exited)))
        )
        if (running === current) running = undefined
        return exit
      })
    })

    yield* Effect.acquireRelease(spawnProcess, () => stopProcess)

    const portOf = () => {
      if (running === undefined) throw new Error("the test server is not running")
      return running.port
    }
    return {
      get url() { return `ws://127.0.0.1:${portOf()}/rpc` },
      get httpUrl() { return `http://127.0.0.1:${portOf()}` },
      get port() { return portOf() },
      databaseUrl,
      env,
      stdout: () => stdout,
      stderr: () => stderr,
      stop: stopProcess,
      restart: Effect.zipRight(stopProcess, spawnProcess),
      healthz: Effect.suspend(() => healthzOn(portOf()))
    } satisfies TestServer
  })

const healthzOn = (port: number) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.status, () => 0)
  )

export class Server extends Context.Tag("test/Server")<Server, TestServer>() {}

/** One server for a whole `layer(...)` block of tests. */
export const ServerLive = (settings: Readonly<Record<string, string>> = {}): Layer.Layer<Server, ServerStartFailed> =>
  Layer.scoped(Server, startTestServer(settings))

/**
 * `tessera host enroll` for a server process: the account layer on the same database and master key (`env` of a
 * TestServer); gives the one-time enrollment code.
 */
export const enrollHostOn = (env: Readonly<Record<string, string>>): Effect.Effect<string> =>
  Effect.gen(function*() {
    const settings = yield* readServerSettings
    const { code } = yield* Effect.flatMap(Enrollment, (enrollment) => enrollment.enrollHost()).pipe(
      Effect.provide(AccountsLive(settings, { migrate: false, maxConnections: 1 }))
    )
    return code
  }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))), Effect.scoped, Effect.orDie)
