/**
 * The database connection: Postgres at DATABASE_URL, or, without one, the embedded default — PGlite persisted in
 * `${dataDir}/pgdata`, served over the Postgres wire protocol in this process, so the same @effect/sql-pg code
 * runs on both. Migrations run when the layer starts.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { loader } from "../../migrations/index.js"

export class DatabaseStartError extends Schema.TaggedError<DatabaseStartError>()("DatabaseStartError", {
  /** What failed, for callers that explain it (the CLI tells an operator to stop the server on "in-use"). */
  reason: Schema.Literal("connect", "migrate", "embedded", "in-use", "data-dir"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

export interface DatabaseOptions {
  /** Postgres connection URL; unset (None, undefined or empty) selects the embedded database. */
  readonly databaseUrl: Option.Option<string> | string | undefined
  /** Holds `pgdata/` (and the embedded server's socket) when the embedded database is used. */
  readonly dataDir: string
  /** Pool size for an external database (default 10). The embedded database always uses exactly one. */
  readonly maxConnections?: number
  /** Run migrations when the layer starts (default true). */
  readonly migrate?: boolean
}

/** The configured database URL, if any: None, undefined and "" all mean "use the embedded database". */
export const databaseUrlOf = (databaseUrl: DatabaseOptions["databaseUrl"]): Option.Option<string> => {
  const url = Option.isOption(databaseUrl) ? databaseUrl : Option.fromNullable(databaseUrl)
  return Option.filter(url, (value) => value.trim() !== "")
}

export const runMigrations: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader })

export const DatabaseLive = (
  options: DatabaseOptions
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseStartError> => {
  const client = Option.match(databaseUrlOf(options.databaseUrl), {
    onNone: () => embeddedClient(options.dataDir),
    onSome: (url) =>
      PgClient.layer({
        url: Redacted.make(url),
        maxConnections: options.maxConnections ?? 10,
        applicationName: "tessera"
      }).pipe(Layer.mapError((cause) => new DatabaseStartError({ reason: "connect", message: "cannot connect to Postgres", cause })))
  })
  if (options.migrate === false) return client
  return Layer.tap(client, (context) =>
    runMigrations.pipe(
      Effect.provide(context),
      Effect.mapError((cause) => new DatabaseStartError({ reason: "migrate", message: "migrations failed", cause }))
    ))
}

/** Postgres builds the socket file name from the port; any number works as long as both sides agree. */
const SOCKET_PORT = 5432
/** sockaddr_un holds 108 bytes including the terminator; keep a margin. */
const MAX_SOCKET_PATH = 100

const embeddedClient = (dataDir: string): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseStartError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const root = resolve(dataDir)
    yield* lockDataDir(root)
    const socketDir = yield* acquireSocketDir(root)
    const socketPath = join(socketDir, `.s.PGSQL.${SOCKET_PORT}`)
    yield* refuseIfInUse(socketPath)

    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => PGlite.create(join(root, "pgdata")),
        catch: (cause) => new DatabaseStartError({ reason: "embedded", message: "cannot open the embedded database", cause })
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.orDie)
    )
    // One session: PGlite is a single backend, so the pool below holds exactly one connection and the server
    // admits exactly one. A unix socket inside the data directory (mode 0700) keeps other local users out.
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 1 })
          await server.start()
          return server
        },
        catch: (cause) => new DatabaseStartError({ reason: "embedded", message: "cannot serve the embedded database", cause })
      }),
      (server) => Effect.promise(() => server.stop())
    )
    return PgClient.layer({
      host: socketDir,
      port: SOCKET_PORT,
      username: "postgres",
      database: "postgres",
      maxConnections: 1,
      // Never let the pool drop its connection: a reconnect could race the server's release of the old one.
      idleTimeout: Duration.zero,
      applicationName: "tessera"
    }).pipe(Layer.mapError((cause) => new DatabaseStartError({ reason: "embedded", message: "cannot connect to the embedded database", cause })))
  }))

const acquireSocketDir = (root: string) =>
  Effect.try({
    try: () => {
      mkdirSync(root, { recursive: true, mode: 0o700 })
      return join(root, `.s.PGSQL.${SOCKET_PORT}`).length <= MAX_SOCKET_PATH ? undefined : mkdtempSync(join(tmpdir(), "tessera-"))
    },
    catch: (cause) => new DatabaseStartError({ reason: "data-dir", message: "cannot create the data directory", cause })
  }).pipe(
    Effect.flatMap((temporary) =>
      temporary === undefined
        ? Effect.succeed(root)
        : Effect.acquireRelease(Effect.succeed(temporary), (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    )
  )

/**
 * A live socket means another process has this data directory open; two PGlite instances on one pgdata would
 * corrupt it. A dead socket file is left over from a crash and is removed.
 */
const refuseIfInUse = (socketPath: string) =>
  Effect.async<boolean>((resume) => {
    const probe = connect(socketPath)
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.succeed(true))
    })
    probe.once("error", () => resume(Effect.succeed(false)))
  }).pipe(
    Effect.flatMap((live) =>
      live
        ? Effect.fail(new DatabaseStartError({ reason: "in-use", message: "the data directory is in use by another tessera process" }))
        : Effect.sync(() => {
          try {
            unlinkSync(socketPath)
          } catch {
            // No leftover socket: nothing to clean up.
          }
        })
    )
  )

const LOCK_FILE_NAME = ".tessera.lock"
/** Lock files this process holds (a second layer in the same process must be refused too). */
const heldHere = new Set<string>()

/** Whether a process with this pid is alive (EPERM: alive, someone else's). */
const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Holds the data directory for this process: a lock file created exclusively (O_EXCL) with our pid, removed when
 * the scope closes. Two processes starting at once cannot both get it, whatever the socket path; a lock left by a
 * process that died is taken over. (The live-socket probe alone missed both cases.)
 */
const lockDataDir = (root: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(root, { recursive: true, mode: 0o700 })
        const file = join(root, LOCK_FILE_NAME)
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            writeFileSync(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 })
            heldHere.add(file)
            return { file, owned: true }
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
            const holder = Number.parseInt(readFileSync(file, "utf8").trim(), 10)
            // Our own pid is a holder only if this process holds it now: after a container restart the server
            // may well have the pid of the one that left the lock behind.
            const held = holder === process.pid ? heldHere.has(file) : Number.isInteger(holder) && holder > 0 && processAlive(holder)
            if (held) return { file, owned: false }
            rmSync(file, { force: true })
          }
        }
        return { file, owned: false }
      },
      catch: (cause) => new DatabaseStartError({ reason: "data-dir", message: "cannot lock the data directory", cause })
    }).pipe(
      Effect.flatMap((lock) =>
        lock.owned
          ? Effect.succeed(lock)
          : Effect.fail(new DatabaseStartError({ reason: "in-use", message: "the data directory is in use by another tessera process" }))
      )
    ),
    (lock) =>
      Effect.sync(() => {
        heldHere.delete(lock.file)
        rmSync(lock.file, { force: true })
      })
  )
