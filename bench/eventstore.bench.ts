/**
 * Event store throughput against the real Postgres at 127.0.0.1, in a fresh database dropped afterwards.
 *
 * event_appends_per_s: single-event appends through EventStore.append (expected version, hash chain, one
 *   transaction each) from many concurrent writers, each writing its own streams in order, as actors do.
 * event_replay_per_s: verifyChains over a log of 200k+ events (bulk-inserted with their chain for the setup),
 *   reading every row and recomputing every hash.
 *
 * Run: npx tsx bench/eventstore.bench.ts   (prints one JSON object, writes bench/results/eventstore.json)
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import { replay, verifyChains } from "../src/eventstore/Audit.js"
import { DatabaseLive } from "../src/eventstore/Database.js"
import { EventStore, EventStoreLive } from "../src/eventstore/EventStore.js"
import { canonicalJson, eventHash, ZERO_HASH } from "../src/eventstore/HashChain.js"
import { testDatabaseUrl } from "../test/support/database.js"
import { publishFigures } from "./results.js"

const APPEND_STREAMS = 2_000
const APPENDS_PER_STREAM = 6
const WRITERS = 256
const POOL = 16
const REPLAY_STREAMS = 2_000
const REPLAY_EVENTS_PER_STREAM = 100
const INSERT_BATCH = 10_000

// Random bytes drawn from one pool: a randomBytes call per field would dominate the setup.
const pool = randomBytes(1 << 20)
let drawn = 0
const random = (n: number) => {
  if (drawn + n > pool.length) drawn = 0
  drawn += n
  return pool.subarray(drawn - n, drawn)
}

/** A payload shaped like tessera's: sealed identifiers and fingerprints, ~250 bytes of JSON. */
const payload = () => ({
  communicationId: `v1.${random(12).toString("base64url")}.${random(40).toString("base64url")}`,
  deviceKeyFingerprint: random(32).toString("hex"),
  expiresAt: "2026-01-01T00:00:00.000Z",
  codeHash: random(32).toString("base64url")
})

const streamId = (prefix: string, i: number) => `${prefix}-${i.toString(36).padStart(6, "0")}-${random(8).toString("hex")}`

const measureAppends = Effect.gen(function*() {
  const store = yield* EventStore
  const streams = Array.from({ length: APPEND_STREAMS }, (_, i) => streamId("acct", i))
  // Warm-up: create every stream (its first append), untimed.
  yield* Effect.forEach(streams, (id) => store.append([{ streamId: id, expectedVersion: 0, events: [{ type: "Created", payload: payload() }] }]), {
    concurrency: WRITERS,
    discard: true
  })
  const prepared = streams.map((id) => ({ id, payloads: Array.from({ length: APPENDS_PER_STREAM }, payload) }))
  const started = performance.now()
  yield* Effect.forEach(
    prepared,
    ({ id, payloads }) =>
      Effect.forEach(payloads, (p, i) => store.append([{ streamId: id, expectedVersion: i + 1, events: [{ type: "Touched", payload: p }] }]), {
        discard: true
      }),
    { concurrency: WRITERS, discard: true }
  )
  const seconds = (performance.now() - started) / 1000
  return { appends: APPEND_STREAMS * APPENDS_PER_STREAM, seconds }
})

/** Setup only: writes complete chains straight into the tables, computing hashes with the audit's encoding. */
const bulkInsertLog = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const start = Date.UTC(2025, 0, 1)
  const heads: Array<[string, number, string]> = []
  let rows: Array<[string, number, string, string, string, string, string]> = []
  const flush = () => {
    const batch = rows
    rows = []
    const column = <K extends number>(k: K) => batch.map((row) => row[k])
    return sql.unsafe(
      `INSERT INTO events (stream_id, version, type, payload, recorded_at, prev_hash, hash)
       SELECT * FROM unnest($1::text[], $2::int4[], $3::text[], $4::json[], $5::timestamptz[], $6::text[], $7::text[])`,
      [column(0), column(1), column(2), column(3), column(4), column(5), column(6)]
    )
  }
  for (let s = 0; s < REPLAY_STREAMS; s++) {
    const id = streamId("log", s)
    let prev = ZERO_HASH
    for (let v = 1; v <= REPLAY_EVENTS_PER_STREAM; v++) {
      const type = v === 1 ? "CustomerAccountCreated" : "ActivationCodeIssued"
      const json = canonicalJson(payload())
      const at = start + (s * REPLAY_EVENTS_PER_STREAM + v) * 1000
      const hash = eventHash(prev, id, v, type, json, at)
      rows.push([id, v, type, json, new Date(at).toISOString(), prev, hash])
      prev = hash
    }
    heads.push([id, REPLAY_EVENTS_PER_STREAM, prev])
    if (rows.length >= INSERT_BATCH) yield* flush()
  }
  if (rows.length > 0) yield* flush()
  yield* sql.unsafe(`INSERT INTO streams (stream_id, version, head_hash) SELECT * FROM unnest($1::text[], $2::int4[], $3::text[])`, [
    heads.map((h) => h[0]),
    heads.map((h) => h[1]),
    heads.map((h) => h[2])
  ])
  yield* sql.unsafe("VACUUM ANALYZE events")
  yield* sql.unsafe("VACUUM ANALYZE streams")
})

const measureReplay = Effect.gen(function*() {
  yield* bulkInsertLog
  const started = performance.now()
  const report = yield* verifyChains()
  const seconds = (performance.now() - started) / 1000
  if (Option.isSome(report.firstBroken) || report.brokenLinks !== 0) return yield* Effect.dieMessage("bench log does not verify")
  const lifecycleStarted = performance.now()
  const lifecycles = yield* Stream.runFold(replay(), 0, (n, l) => n + l.events.length)
  const lifecycleSeconds = (performance.now() - lifecycleStarted) / 1000
  return { events: report.events, seconds, lifecycles, lifecycleSeconds }
})

const program = Effect.gen(function*() {
  const appends = yield* measureAppends
  const replayed = yield* measureReplay
  return {
    event_appends_per_s: Math.round(appends.appends / appends.seconds),
    event_replay_per_s: Math.round(replayed.events / replayed.seconds),
    event_lifecycle_replay_per_s: Math.round(replayed.lifecycles / replayed.lifecycleSeconds),
    appends_measured: appends.appends,
    append_writers: WRITERS,
    append_pool_connections: POOL,
    replay_events_verified: replayed.events
  }
})

const figures = await Effect.runPromise(
  Effect.scoped(Effect.gen(function*() {
    const url = yield* testDatabaseUrl
    return yield* program.pipe(
      Effect.provide(EventStoreLive.pipe(Layer.provideMerge(DatabaseLive({ databaseUrl: url, dataDir: "", maxConnections: POOL })))),
      Effect.orDie
    )
  }))
)
publishFigures("eventstore", figures)
