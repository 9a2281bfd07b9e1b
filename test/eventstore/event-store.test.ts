import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { EventStore, LookupTaken, VersionConflict } from "../../src/eventstore/EventStore.js"
import { eventHash, ZERO_HASH } from "../../src/eventstore/HashChain.js"
import { event, onFreshDatabase } from "./fixtures.js"

describe("EventStore on Postgres", () => {
  it.live("appends and reads back a stream, payloads in canonical form, hashes chained", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      const first = yield* store.append([{
        streamId: "host-1",
        expectedVersion: 0,
        events: [event("HostEnrolled", { z: 1, a: { y: [1, "two"], b: null } }), event("HostRenamed", { at: new Date(0) })]
      }])
      const second = yield* store.append([{ streamId: "host-1", expectedVersion: 2, events: [event("HostLeft")] }])
      const read = yield* store.read("host-1")

      expect(read).toEqual([...first, ...second])
      expect(read.map((e) => [e.version, e.type])).toEqual([[1, "HostEnrolled"], [2, "HostRenamed"], [3, "HostLeft"]])
      expect(Object.keys(read[0]!.payload)).toEqual(["a", "z"])
      expect(read[1]!.payload).toEqual({ at: "1970-01-01T00:00:00.000Z" })
      expect(read[0]!.prevHash).toBe(ZERO_HASH)
      expect(read[1]!.prevHash).toBe(read[0]!.hash)
      expect(read[2]!.prevHash).toBe(read[1]!.hash)
      // The hash Postgres computed is the one the audit recomputes from the documented encoding.
      expect(read[0]!.hash).toBe(
        eventHash(ZERO_HASH, "host-1", 1, "HostEnrolled", '{"a":{"b":null,"y":[1,"two"]},"z":1}', read[0]!.recordedAt.getTime())
      )
      expect(read[0]!.position).toBeLessThan(read[2]!.position)
      expect(yield* store.version("host-1")).toBe(3)
      expect(yield* store.version("nobody")).toBe(0)
      expect(yield* store.read("nobody")).toEqual([])
      expect([yield* store.streamCount, yield* store.eventCount]).toEqual([1, 3])
    })))

  it.live("refuses a stale expected version with the actual version, and writes nothing", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append([{ streamId: "c-1", expectedVersion: 0, events: [event("A"), event("B")] }])
      const stale = yield* Effect.flip(store.append([{ streamId: "c-1", expectedVersion: 1, events: [event("C")] }]))
      const recreate = yield* Effect.flip(store.append([{ streamId: "c-1", expectedVersion: 0, events: [event("C")] }]))
      const ahead = yield* Effect.flip(store.append([{ streamId: "c-2", expectedVersion: 4, events: [event("C")] }]))

      expect(stale).toEqual(new VersionConflict({ streamId: "c-1", expectedVersion: 1, actualVersion: 2 }))
      expect(recreate).toEqual(new VersionConflict({ streamId: "c-1", expectedVersion: 0, actualVersion: 2 }))
      expect(ahead).toEqual(new VersionConflict({ streamId: "c-2", expectedVersion: 4, actualVersion: 0 }))
      expect((yield* store.read("c-1")).map((e) => e.type)).toEqual(["A", "B"])
      expect(yield* store.eventCount).toBe(2)
      expect(yield* store.streamCount).toBe(1)
    })))

  it.live("two writers on separate connections: the one that waits on the other's lock loses", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      const firstAppended = yield* Deferred.make<void>()
      const commitFirst = yield* Deferred.make<void>()
      const first = yield* sql.withTransaction(Effect.gen(function*() {
        const events = yield* store.append([{ streamId: "race", expectedVersion: 0, events: [event("First")] }])
        yield* Deferred.succeed(firstAppended, undefined)
        yield* Deferred.await(commitFirst)
        return events
      })).pipe(Effect.fork)
      yield* Deferred.await(firstAppended)
      const second = yield* store.append([{ streamId: "race", expectedVersion: 0, events: [event("Second")] }]).pipe(
        Effect.either,
        Effect.fork
      )
      // The second writer is genuinely in flight: Postgres shows it waiting for the first one's lock.
      yield* sql<{ n: string }>`
        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (rows) => Number(rows[0]!.n) === 1 })
      )
      yield* Deferred.succeed(commitFirst, undefined)

      expect((yield* Fiber.join(first)).map((e) => e.type)).toEqual(["First"])
      expect(yield* Fiber.join(second)).toEqual(
        Either.left(new VersionConflict({ streamId: "race", expectedVersion: 0, actualVersion: 1 }))
      )
      expect((yield* store.read("race")).map((e) => e.type)).toEqual(["First"])
    })))

  it.live("many concurrent writers with the same expected version: exactly one wins", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append([{ streamId: "busy", expectedVersion: 0, events: [event("Opened")] }])
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) => Effect.either(store.append([{ streamId: "busy", expectedVersion: 1, events: [event(`Writer${i}`)] }])),
        { concurrency: "unbounded" }
      )
      const winners = results.filter(Either.isRight)
      const losers = results.filter(Either.isLeft).map((r) => r.left)

      expect(winners).toHaveLength(1)
      expect(losers).toHaveLength(11)
      expect(losers.every((e) => e instanceof VersionConflict && e.actualVersion === 2)).toBe(true)
      expect((yield* store.read("busy")).map((e) => e.type)).toEqual(["Opened", winners[0]!.right[0]!.type])
    })))

  it.live("requests that are sent together still succeed or fail each on their own", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append([{ streamId: "taken", expectedVersion: 0, events: [event("Created")] }], {
        put: [{ kind: "code", key: "k", streamId: "taken" }]
      })
      // Many requests at once are coalesced into shared transactions; refusals must not leak into the others.
      const results = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) =>
          Effect.either(store.append(
            [{ streamId: `s${i}`, expectedVersion: i % 10 === 3 ? 7 : 0, events: [event("Created"), event(`E${i}`)] }],
            i % 10 === 5 ? { put: [{ kind: "code", key: "k", streamId: `s${i}` }] } : undefined
          )),
        { concurrency: "unbounded" }
      )
      results.forEach((result, i) => {
        if (i % 10 === 3) expect(Either.getLeft(result)).toEqual(Option.some(new VersionConflict({ streamId: `s${i}`, expectedVersion: 7, actualVersion: 0 })))
        else if (i % 10 === 5) expect(Either.getLeft(result)).toEqual(Option.some(new LookupTaken({ kind: "code" })))
        else expect(Either.getOrThrow(result).map((e) => [e.streamId, e.version, e.type])).toEqual([[`s${i}`, 1, "Created"], [`s${i}`, 2, `E${i}`]])
      })
      expect(yield* store.eventCount).toBe(1 + 32 * 2)
      expect(yield* store.lookup("code", "k")).toEqual(Option.some("taken"))
    })))

  it.live("two transactions taking the same new lookup key: the one that waited gets LookupTaken", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      const firstAppended = yield* Deferred.make<void>()
      const commitFirst = yield* Deferred.make<void>()
      const first = yield* sql.withTransaction(Effect.gen(function*() {
        yield* store.append([{ streamId: "a", expectedVersion: 0, events: [event("Activated")] }], {
          put: [{ kind: "device", key: "fp", streamId: "a" }]
        })
        yield* Deferred.succeed(firstAppended, undefined)
        yield* Deferred.await(commitFirst)
      })).pipe(Effect.fork)
      yield* Deferred.await(firstAppended)
      const second = yield* store.append([{ streamId: "b", expectedVersion: 0, events: [event("Activated")] }], {
        put: [{ kind: "device", key: "fp", streamId: "b" }]
      }).pipe(Effect.either, Effect.fork)
      yield* sql<{ n: string }>`
        SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (rows) => Number(rows[0]!.n) === 1 })
      )
      yield* Deferred.succeed(commitFirst, undefined)
      yield* Fiber.join(first)

      expect(yield* Fiber.join(second)).toEqual(Either.left(new LookupTaken({ kind: "device" })))
      expect(yield* store.lookup("device", "fp")).toEqual(Option.some("a"))
      expect(yield* store.version("b")).toBe(0)
    })))

  it.live("a multi-stream append is all or nothing", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append([{ streamId: "host", expectedVersion: 0, events: [event("HostEnrolled")] }])
      const failed = yield* Effect.flip(store.append(
        [
          { streamId: "customer", expectedVersion: 0, events: [event("CustomerAccountCreated")] },
          { streamId: "host", expectedVersion: 5, events: [event("CustomerAdded")] }
        ],
        { put: [{ kind: "code", key: "k1", streamId: "customer" }] }
      ))
      expect(failed).toEqual(new VersionConflict({ streamId: "host", expectedVersion: 5, actualVersion: 1 }))
      expect(yield* store.read("customer")).toEqual([])
      expect(yield* store.version("customer")).toBe(0)
      expect(yield* store.lookup("code", "k1")).toEqual(Option.none())

      const stored = yield* store.append(
        [
          { streamId: "customer", expectedVersion: 0, events: [event("CustomerAccountCreated"), event("CodeIssued")] },
          { streamId: "host", expectedVersion: 1, events: [event("CustomerAdded")] }
        ],
        { put: [{ kind: "code", key: "k1", streamId: "customer" }] }
      )
      expect(stored.map((e) => [e.streamId, e.version, e.type])).toEqual([
        ["customer", 1, "CustomerAccountCreated"],
        ["customer", 2, "CodeIssued"],
        ["host", 2, "CustomerAdded"]
      ])
      expect(yield* store.lookup("code", "k1")).toEqual(Option.some("customer"))
    })))

  it.live("lookups: put, taken by another stream, idempotent for the same stream, moved, removed", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append([{ streamId: "a", expectedVersion: 0, events: [event("Created")] }], {
        put: [{ kind: "device", key: "fp-1", streamId: "a" }, { kind: "code", key: "c-1", streamId: "a" }]
      })
      expect(yield* store.lookup("device", "fp-1")).toEqual(Option.some("a"))
      expect(yield* store.lookup("device", "c-1")).toEqual(Option.none())

      const taken = yield* Effect.flip(store.append([{ streamId: "b", expectedVersion: 0, events: [event("Created")] }], {
        put: [{ kind: "code", key: "c-1", streamId: "b" }]
      }))
      expect(taken).toEqual(new LookupTaken({ kind: "code" }))
      expect(yield* store.version("b")).toBe(0)

      yield* store.append([{ streamId: "a", expectedVersion: 1, events: [event("Touched")] }], {
        put: [{ kind: "code", key: "c-1", streamId: "a" }]
      })
      yield* store.append([{ streamId: "b", expectedVersion: 0, events: [event("Created")] }], {
        remove: [{ kind: "code", key: "c-1" }],
        put: [{ kind: "code", key: "c-1", streamId: "b" }]
      })
      expect(yield* store.lookup("code", "c-1")).toEqual(Option.some("b"))

      yield* store.append([], { remove: [{ kind: "code", key: "c-1" }, { kind: "device", key: "fp-1" }] })
      expect(yield* store.lookup("code", "c-1")).toEqual(Option.none())
      expect(yield* store.lookup("device", "fp-1")).toEqual(Option.none())
    })))

  it.live("inside a caller's transaction a caught conflict rolls back only the append", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      yield* store.append([{ streamId: "x", expectedVersion: 0, events: [event("A")] }])
      yield* sql.withTransaction(Effect.gen(function*() {
        const conflict = yield* Effect.flip(store.append([{ streamId: "x", expectedVersion: 0, events: [event("B")] }]))
        expect(conflict._tag).toBe("VersionConflict")
        yield* store.append([{ streamId: "y", expectedVersion: 0, events: [event("C")] }])
      }))
      expect((yield* store.read("y")).map((e) => e.type)).toEqual(["C"])
    })))

  it.live("readAll streams the whole log in global order across batches", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      for (let i = 0; i < 7; i++) {
        yield* store.append([{ streamId: `s${i % 3}`, expectedVersion: Math.floor(i / 3), events: [event(`E${i}`)] }])
      }
      const all = yield* Stream.runCollect(store.readAll({ batchSize: 3 }))
      expect(Array.from(all, (e) => e.type)).toEqual(["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
    })))

  it.live("rejects malformed appends as defects, before touching the database", () =>
    onFreshDatabase(Effect.gen(function*() {
      const store = yield* EventStore
      const twice = yield* Effect.exit(store.append([
        { streamId: "d", expectedVersion: 0, events: [event("A")] },
        { streamId: "d", expectedVersion: 1, events: [event("B")] }
      ]))
      const notJson = yield* Effect.exit(store.append([{ streamId: "d", expectedVersion: 0, events: [event("A", { n: NaN })] }]))
      expect(twice._tag === "Failure" && twice.cause._tag).toBe("Die")
      expect(notJson._tag === "Failure" && notJson.cause._tag).toBe("Die")
      expect(yield* store.eventCount).toBe(0)
    })))
})
