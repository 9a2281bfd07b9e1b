/**
 * A fresh, uniquely named Postgres database per test file (or per test), dropped afterwards even when sessions
 * are still connected. The server under test reaches it through the URL, e.g. as DATABASE_URL of a subprocess.
 *
 *   layer(TestDatabaseLive)("...", (it) => { it.effect("...", () => ...) })   // SqlClient + PgClient, migrated
 *   it.scoped("...", () => Effect.gen(function*() { const url = yield* testDatabaseUrl }))
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { DatabaseLive } from "../../src/eventstore/Database.js"

/** The Postgres server tests run against (trust auth for user postgres on loopback). */
export const POSTGRES_ADMIN_URL = process.env["TESSERA_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const admin = <A>(run: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(PgClient.PgClient, run).pipe(
    Effect.provide(
      PgClient.layer({ url: Redacted.make(POSTGRES_ADMIN_URL), maxConnections: 1 }).pipe(Layer.provide(Reactivity.layer))
    ),
    Effect.orDie
  )

/** Creates `tessera_t_<random>`, yields its URL, and drops it (WITH (FORCE)) when the scope closes. */
export const testDatabaseUrl: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.suspend(() => {
    const name = `tessera_t_${randomBytes(8).toString("hex")}`
    return admin((sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(Effect.as(name))
  }),
  (name) => admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
).pipe(Effect.map((name) => {
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}))

/** Runs `use` with the URL of a fresh database that is dropped afterwards. */
export const withTestDatabase = <A, E, R>(use: (url: string) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.scoped(Effect.flatMap(testDatabaseUrl, use))

export class TestDatabaseUrl extends Context.Tag("test/TestDatabaseUrl")<TestDatabaseUrl, string>() {}

export const TestDatabaseUrlLive: Layer.Layer<TestDatabaseUrl> = Layer.scoped(TestDatabaseUrl, testDatabaseUrl)

/** A migrated client on a fresh database, plus its URL (for subprocesses). */
export const TestDatabaseLive: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient | TestDatabaseUrl> = Layer.unwrapEffect(
  Effect.map(TestDatabaseUrl, (url) => DatabaseLive({ databaseUrl: url, dataDir: "", maxConnections: 4 }).pipe(Layer.orDie))
).pipe(Layer.provideMerge(TestDatabaseUrlLive))
