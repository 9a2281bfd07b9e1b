import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { formatLifecycle, replay, verifyChains } from "../../src/eventstore/Audit.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { canonicalJson, eventHash } from "../../src/eventstore/HashChain.js"
import { event, onFreshDatabase } from "./fixtures.js"

/** Three streams: a (3 events), b (4 events), c (2 events), appended interleaved. */
const seed = Effect.gen(function*() {
  const store = yield* EventStore
  yield* store.append([{ streamId: "a", expectedVersion: 0, events: [event("A1", { n: 1 })] }])
  yield* store.append([{ streamId: "b", expectedVersion: 0, events: [event("B1", { n: 1 }), event("B2", { n: 2 })] }])
  yield* store.append([
    { streamId: "a", expectedVersion: 1, events: [event("A2", { n: 2 }), event("A3", { n: 3 })] },
    { streamId: "c", expectedVersion: 0, events: [event("C1", { n: 1 }), event("C2", { n: 2 })] }
  ])
  yield* store.append([{ streamId: "b", expectedVersion: 2, events: [event("B3", { n: 3 }), event("B4", { n: 4 })] }])
})

/** What someone with direct SQL access does: switch the append-only guard off, change history. */
const tamper = (statement: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe("ALTER TABLE events DISABLE TRIGGER events_append_only")
    yield* sql.unsafe(statement)
    yield* sql.unsafe("ALTER TABLE events ENABLE TRIGGER events_append_only")
  })

const brokenAt = (streamId: string, version: number, reason: string) => Option.some({ streamId, version, reason })

describe("audit", () => {
  it.live("verifies intact chains and reports progress up to the total", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      const progress: Array<[number, number]> = []
      const report = yield* verifyChains({
        batchSize: 4,
        onProgress: (done, total) => Effect.sync(() => progress.push([done, total]))
      })
      expect(report).toEqual({ streams: 3, events: 9, firstBroken: Option.none(), brokenLinks: 0 })
      expect(progress).toEqual([[4, 9], [8, 9], [9, 9]])
    })))

  it.live("refuses a plain UPDATE or DELETE of events", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      const sql = yield* SqlClient.SqlClient
      const update = yield* Effect.flip(sql`UPDATE events SET type = 'Forged' WHERE stream_id = 'a'`)
      const remove = yield* Effect.flip(sql`DELETE FROM events WHERE stream_id = 'a'`)
      expect(String(update.cause)).toContain("append-only")
      expect(String(remove.cause)).toContain("append-only")
      expect((yield* verifyChains()).brokenLinks).toBe(0)
    })))

  it.live("an edited payload breaks that event's hash and the next event's link", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      yield* tamper(`UPDATE events SET payload = '{"n":20}' WHERE stream_id = 'b' AND version = 2`)
      const report = yield* verifyChains({ batchSize: 3 })
      expect(report.firstBroken).toEqual(brokenAt("b", 2, "hash-mismatch"))
      expect(report.brokenLinks).toBe(1)
      expect([report.streams, report.events]).toEqual([3, 9])
    })))

  it.live("a forged event with a recomputed hash is caught by the next link, a forged last one by the head", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      const store = yield* EventStore
      // The forger recomputes the hash of the event they changed, but cannot change what its successor (or the
      // stream head) points to without recomputing the rest of the chain too.
      const forge = (streamId: string, version: number) =>
        Effect.gen(function*() {
          const original = (yield* store.read(streamId))[version - 1]!
          const hash = eventHash(original.prevHash, streamId, version, "Forged", canonicalJson(original.payload), original.recordedAt.getTime())
          yield* tamper(`UPDATE events SET type = 'Forged', hash = '${hash}' WHERE stream_id = '${streamId}' AND version = ${version}`)
        })
      yield* forge("a", 2)
      const report = yield* verifyChains()
      expect(report.firstBroken).toEqual(brokenAt("a", 3, "prev-hash-mismatch"))
      expect(report.brokenLinks).toBe(1)

      yield* forge("c", 2)
      const both = yield* verifyChains()
      expect(both.firstBroken).toEqual(brokenAt("a", 3, "prev-hash-mismatch"))
      expect(both.brokenLinks).toBe(2)
    })))

  it.live("a forged last event alone is reported at that event", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      const store = yield* EventStore
      const last = (yield* store.read("b"))[3]!
      const hash = eventHash(last.prevHash, "b", 4, "Forged", canonicalJson(last.payload), last.recordedAt.getTime())
      yield* tamper(`UPDATE events SET type = 'Forged', hash = '${hash}' WHERE stream_id = 'b' AND version = 4`)
      expect((yield* verifyChains()).firstBroken).toEqual(brokenAt("b", 4, "hash-mismatch"))
    })))

  it.live("an edited type or hash is reported at that event", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      yield* tamper(`UPDATE events SET hash = repeat('0', 64) WHERE stream_id = 'c' AND version = 1`)
      const report = yield* verifyChains()
      expect(report.firstBroken).toEqual(brokenAt("c", 1, "hash-mismatch"))
      // Its successor still points at the original hash.
      expect(report.brokenLinks).toBe(2)
    })))

  it.live("a deleted event is a version gap at the missing version", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      yield* tamper(`DELETE FROM events WHERE stream_id = 'b' AND version = 3`)
      const report = yield* verifyChains()
      expect(report.firstBroken).toEqual(brokenAt("b", 3, "version-gap"))
      expect(report.events).toBe(8)
    })))

  it.live("a deleted last event is caught by the stream head", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      yield* tamper(`DELETE FROM events WHERE stream_id = 'c' AND version = 2`)
      expect((yield* verifyChains()).firstBroken).toEqual(brokenAt("c", 2, "version-gap"))
    })))

  it.live("a stream whose events were all deleted is reported", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      yield* tamper(`DELETE FROM events WHERE stream_id = 'a'`)
      const report = yield* verifyChains()
      expect(report.firstBroken).toEqual(brokenAt("a", 1, "version-gap"))
      expect(report.streams).toBe(3)
    })))

  it.live("replay lists each stream's lifecycle with ids, versions, types and dates only", () =>
    onFreshDatabase(Effect.gen(function*() {
      yield* seed
      const progress: Array<number> = []
      const lifecycles = Array.from(yield* Stream.runCollect(replay({
        batchSize: 2,
        onProgress: (done) => Effect.sync(() => progress.push(done))
      })))
      expect(lifecycles.map((l) => [l.streamId, l.events.map((e) => `${e.version}:${e.type}`)])).toEqual([
        ["a", ["1:A1", "2:A2", "3:A3"]],
        ["b", ["1:B1", "2:B2", "3:B3", "4:B4"]],
        ["c", ["1:C1", "2:C2"]]
      ])
      expect(progress).toEqual([2, 4, 6, 8, 9])
      const lines = formatLifecycle(lifecycles[2]!)
      const today = lifecycles[2]!.events[0]!.recordedAt.toISOString().slice(0, 10)
      expect(lines).toEqual(["stream c (2 events)", `  v1  ${today}  C1`, `  v2  ${today}  C2`])
      expect(lines.join("\n")).not.toContain("\"n\"")
    })))
})
