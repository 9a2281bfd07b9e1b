import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { verifyChains } from "../../src/eventstore/Audit.js"
import { DatabaseLive, DatabaseStartError, runMigrations } from "../../src/eventstore/Database.js"
import { DataKeys, DataKeysLive } from "../../src/eventstore/DataKeys.js"
import { EventStore, EventStoreLive, LookupTaken, VersionConflict } from "../../src/eventstore/EventStore.js"
import { MasterKeyLive } from "../../src/eventstore/MasterKey.js"

// The embedded default: PGlite in a data directory, served over the wire protocol in this process.
const embedded = (dataDir: string) => {
  const options = { databaseUrl: undefined, dataDir }
  return Layer.mergeAll(EventStoreLive, DataKeysLive).pipe(
    Layer.provideMerge(Layer.merge(DatabaseLive(options), MasterKeyLive(options)))
  )
}

const scratchDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-pglite-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("embedded database (PGlite over the wire protocol)", () => {
  it.scopedLive("keeps its data, keys and chains across a close and reopen; migrations run once", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* scratchDir, "data")

      const sealed = yield* Effect.gen(function*() {
        const store = yield* EventStore
        const keys = yield* DataKeys
        yield* keys.create("customer-1")
        const sealed = yield* keys.seal("customer-1", "communication-id")
        yield* store.append(
          [
            { streamId: "host-1", expectedVersion: 0, events: [{ type: "HostEnrolled", payload: { b: 2, a: 1 } }] },
            { streamId: "customer-1", expectedVersion: 0, events: [{ type: "CustomerActivated", payload: { id: sealed } }] }
          ],
          { put: [{ kind: "device", key: "fp", streamId: "customer-1" }] }
        )
        // Typed failures arrive through PGlite exactly as through Postgres.
        const conflict = yield* Effect.flip(store.append([{ streamId: "host-1", expectedVersion: 0, events: [{ type: "X", payload: {} }] }]))
        const taken = yield* Effect.flip(store.append([{ streamId: "host-2", expectedVersion: 0, events: [{ type: "X", payload: {} }] }], {
          put: [{ kind: "device", key: "fp", streamId: "host-2" }]
        }))
        expect(conflict).toEqual(new VersionConflict({ streamId: "host-1", expectedVersion: 0, actualVersion: 1 }))
        expect(taken).toEqual(new LookupTaken({ kind: "device" }))
        return sealed
      }).pipe(Effect.provide(embedded(dataDir)))

      yield* Effect.gen(function*() {
        const store = yield* EventStore
        const keys = yield* DataKeys
        expect(yield* runMigrations).toEqual([])
        expect((yield* store.read("host-1")).map((e) => [e.version, e.type, e.payload])).toEqual([[1, "HostEnrolled", { a: 1, b: 2 }]])
        expect(yield* store.lookup("device", "fp")).toEqual(Option.some("customer-1"))
        expect(yield* keys.open("customer-1", sealed)).toEqual(Option.some("communication-id"))
        expect(yield* verifyChains()).toEqual({ streams: 2, events: 2, firstBroken: Option.none(), brokenLinks: 0 })
        yield* store.append([{ streamId: "host-1", expectedVersion: 1, events: [{ type: "HostRenamed", payload: {} }] }])

        // While it is open, a second process (here: a second layer) must not open the same pgdata.
        const second = yield* Effect.flip(Effect.provide(SqlClient.SqlClient, DatabaseLive({ databaseUrl: undefined, dataDir })))
        expect(second).toBeInstanceOf(DatabaseStartError)
        expect(second.message).toContain("in use")
      }).pipe(Effect.provide(embedded(dataDir)))

      // Third start: what the second session appended is there, and the migration ran exactly once.
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        expect((yield* store.read("host-1")).map((e) => e.type)).toEqual(["HostEnrolled", "HostRenamed"])
        expect(yield* sql<{ migration_id: number }>`SELECT migration_id FROM effect_sql_migrations`).toEqual([{ migration_id: 1 }])
      }).pipe(Effect.provide(embedded(dataDir)))
    }), { timeout: 120_000 })
})

describe("the embedded data directory lock", () => {
  it.scopedLive("refuses a data directory whose lock a live process holds, takes over one left by a dead process", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-lock-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      // A live process (here: a sleeping child) holds the lock: refused, whatever the socket says.
      const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.kill("SIGKILL")))
      writeFileSync(join(dataDir, ".tessera.lock"), `${holder.pid}\n`)
      const refused = yield* Effect.flip(Effect.provide(SqlClient.SqlClient, DatabaseLive({ databaseUrl: undefined, dataDir })))
      expect(refused).toMatchObject({ _tag: "DatabaseStartError", reason: "in-use" })
      // The holder died without cleaning up: its stale lock is taken over and the database opens.
      holder.kill("SIGKILL")
      yield* Effect.promise(() => new Promise((resolve) => holder.once("exit", resolve)))
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 AS one`).pipe(
        Effect.provide(DatabaseLive({ databaseUrl: undefined, dataDir }))
      )
      expect(rows).toEqual([{ one: 1 }])
    }), { timeout: 120_000 })
})
