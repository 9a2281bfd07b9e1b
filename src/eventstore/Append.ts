/**
 * Writing to the log: what an append is, how it can be refused, and how a batch of independent appends is
 * written in one transaction.
 *
 * A batch transaction: lock the heads of every stream it touches (in stream id order, so concurrent batches
 * cannot deadlock), lock the lookup rows it touches (in key order), decide each request in order against those
 * locked values — refusing the ones whose expected version or lookup key does not hold — compute the hash chain
 * of the accepted events, and write them with a few set-based statements. Each request is all or nothing on its
 * own; refusals are decided before anything is written, so they never abort the transaction.
 *
 * Races the locks cannot cover — two transactions creating the same new stream or the same new lookup key —
 * end in a unique violation that aborts the whole batch; the caller then retries each request on its own, and
 * the retry sees the other's committed write and refuses cleanly.
 */
import type { Connection } from "@effect/sql/SqlConnection"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { canonicalJson, eventHash, ZERO_HASH } from "./HashChain.js"

export interface NewEvent {
  readonly type: string
  readonly payload: Record<string, unknown>
}

export interface StoredEvent {
  /** Global order of the log (gaps possible: a rolled-back append consumes positions). */
  readonly position: number
  readonly streamId: string
  /** 1-based. */
  readonly version: number
  readonly type: string
  readonly payload: Record<string, unknown>
  /** Millisecond precision; part of the hash. */
  readonly recordedAt: Date
  readonly prevHash: string
  readonly hash: string
}

export interface StreamAppend {
  readonly streamId: string
  /** Events already in the stream; 0 for a new stream. An append without events only checks the version. */
  readonly expectedVersion: number
  readonly events: ReadonlyArray<NewEvent>
}

export interface LookupChange {
  readonly put?: ReadonlyArray<{ readonly kind: string; readonly key: string; readonly streamId: string }>
  /** Applied before `put`, so one change can move a key. */
  readonly remove?: ReadonlyArray<{ readonly kind: string; readonly key: string }>
}

export class VersionConflict extends Schema.TaggedError<VersionConflict>()("VersionConflict", {
  streamId: Schema.String,
  expectedVersion: Schema.Number,
  actualVersion: Schema.Number
}) {}

export class LookupTaken extends Schema.TaggedError<LookupTaken>()("LookupTaken", {
  kind: Schema.String
}) {}

/** One caller's request, checked and with its payloads in canonical JSON, ready to join a batch. */
export interface AppendRequest {
  readonly appends: ReadonlyArray<StreamAppend>
  readonly payloads: ReadonlyArray<ReadonlyArray<string>>
  readonly lookups: LookupChange
}

export type AppendOutcome = Either.Either<ReadonlyArray<StoredEvent>, VersionConflict | LookupTaken>

/** Throws on a request that is a programming error; the caller turns that into a defect. */
export const prepareAppend = (appends: ReadonlyArray<StreamAppend>, lookups: LookupChange | undefined): AppendRequest => {
  const seen = new Set<string>()
  for (const item of appends) {
    if (seen.has(item.streamId)) throw new Error("EventStore.append: a stream appears twice in one call")
    if (!Number.isInteger(item.expectedVersion) || item.expectedVersion < 0) {
      throw new Error("EventStore.append: expectedVersion must be a non-negative integer")
    }
    seen.add(item.streamId)
  }
  return {
    appends,
    payloads: appends.map((item) => item.events.map((event) => canonicalJson(event.payload))),
    lookups: lookups ?? {}
  }
}

/** A stored event before the database has given it its position. */
type Positioned = { -readonly [K in keyof StoredEvent]: StoredEvent[K] }

interface Head {
  readonly version: number
  readonly hash: string
}

/** Lookup rows are addressed by kind and key; NUL cannot occur in Postgres text, so it separates them safely. */
const lookupId = (kind: string, key: string) => `${kind}\u0000${key}`

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const LOCK_SQL = `
  WITH h AS (
    SELECT stream_id, version, head_hash FROM streams WHERE stream_id = ANY($1::text[]) ORDER BY stream_id FOR UPDATE
  ), l AS (
    SELECT l.kind, l.key, l.stream_id FROM lookups l
    JOIN unnest($2::text[], $3::text[]) AS t(kind, key) ON l.kind = t.kind AND l.key = t.key
    ORDER BY l.kind, l.key FOR UPDATE OF l
  )
  SELECT 0 AS source, stream_id AS a, NULL::text AS b, version, head_hash AS c FROM h
  UNION ALL
  SELECT 1, kind, key, NULL::int4, stream_id FROM l`

// One statement for all writes. Each lookup key appears in at most one of delete / insert / update.
const WRITE_SQL = `
  WITH ev AS (
    INSERT INTO events (stream_id, version, type, payload, recorded_at, prev_hash, hash)
    SELECT t.stream_id, t.version, t.type, t.payload, $5::timestamptz, t.prev_hash, t.hash
    FROM unnest($1::text[], $2::int4[], $3::text[], $4::json[], $6::text[], $7::text[])
      WITH ORDINALITY AS t(stream_id, version, type, payload, prev_hash, hash, ord)
    ORDER BY t.ord
    RETURNING position, stream_id, version
  ), heads AS (
    -- Existing heads are locked. A new one that another transaction inserted meanwhile is overwritten here only
    -- to collide on the events' unique (stream_id, version) above, which aborts this batch.
    INSERT INTO streams (stream_id, version, head_hash) SELECT * FROM unnest($8::text[], $9::int4[], $10::text[])
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, head_hash = excluded.head_hash
  ), removed AS (
    DELETE FROM lookups l USING unnest($11::text[], $12::text[]) AS t(kind, key) WHERE l.kind = t.kind AND l.key = t.key
  ), added AS (
    -- Keys that were free when locked: a plain INSERT, so a key someone else took meanwhile is a unique violation.
    INSERT INTO lookups (kind, key, stream_id) SELECT * FROM unnest($13::text[], $14::text[], $15::text[])
  ), moved AS (
    UPDATE lookups l SET stream_id = t.stream_id FROM unnest($16::text[], $17::text[], $18::text[]) AS t(kind, key, stream_id)
    WHERE l.kind = t.kind AND l.key = t.key
  )
  SELECT position, stream_id, version FROM ev`

/**
 * A transaction on one connection, driven directly: the batch is a handful of statements, and going around the
 * statement layer's per-query machinery roughly halves the client's CPU per append. Inside a caller's
 * transaction it is a savepoint on the caller's connection. Uninterruptible, so a connection never goes back to
 * the pool in the middle of a transaction.
 */
const transaction = <A>(
  sql: SqlClient.SqlClient,
  body: (connection: Connection) => Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) => {
    const run = (connection: Connection, begin: string, commit: string, rollback: string) =>
      connection.executeRaw(begin, []).pipe(
        Effect.zipRight(body(connection)),
        Effect.tap(() => connection.executeRaw(commit, [])),
        Effect.tapErrorCause(() => Effect.ignore(connection.executeRaw(rollback, [])))
      )
    return Option.match(outer, {
      onSome: ([connection]) =>
        run(connection, "SAVEPOINT tessera_append", "RELEASE SAVEPOINT tessera_append", "ROLLBACK TO SAVEPOINT tessera_append"),
      onNone: () => Effect.scoped(Effect.flatMap(sql.reserve, (connection) => run(connection, "BEGIN", "COMMIT", "ROLLBACK")))
    })
  }).pipe(Effect.uninterruptible)

/** Runs one batch transaction (see the header). */
export const appendBatch = (
  sql: SqlClient.SqlClient,
  batch: ReadonlyArray<AppendRequest>
): Effect.Effect<ReadonlyArray<AppendOutcome>, SqlError> =>
  transaction(sql, (connection) => Effect.gen(function*() {
    const streamIds = Array.from(new Set(batch.flatMap((request) => request.appends.map((item) => item.streamId)))).sort(byText)
    const touched = new Map<string, { readonly kind: string; readonly key: string }>()
    for (const request of batch) {
      for (const entry of [...(request.lookups.remove ?? []), ...(request.lookups.put ?? [])]) {
        touched.set(lookupId(entry.kind, entry.key), { kind: entry.kind, key: entry.key })
      }
    }
    const heads = new Map<string, Head>()
    const lookupsBefore = new Map<string, string>()
    if (streamIds.length > 0 || touched.size > 0) {
      const keys = Array.from(touched.values())
      const rows = yield* connection.executeValues(LOCK_SQL, [streamIds, keys.map((k) => k.kind), keys.map((k) => k.key)])
      for (const row of rows) {
        if (row[0] === 0) heads.set(row[1] as string, { version: row[3] as number, hash: row[4] as string })
        else lookupsBefore.set(lookupId(row[1] as string, row[2] as string), row[4] as string)
      }
    }
    // Decide every request against the locked state, in order; accepted requests move that state on.
    const recordedAt = new Date()
    const recordedMs = recordedAt.getTime()
    const lookups = new Map(lookupsBefore)
    const outcomes: Array<Either.Either<Array<StoredEvent>, VersionConflict | LookupTaken>> = []
    const changedHeads = new Map<string, Head>()
    const written: Array<{ readonly event: Positioned; readonly payloadText: string }> = []
    for (const request of batch) {
      const conflict = request.appends.find((item) => (heads.get(item.streamId)?.version ?? 0) !== item.expectedVersion)
      if (conflict !== undefined) {
        outcomes.push(Either.left(
          new VersionConflict({
            streamId: conflict.streamId,
            expectedVersion: conflict.expectedVersion,
            actualVersion: heads.get(conflict.streamId)?.version ?? 0
          })
        ))
        continue
      }
      const next = new Map<string, string | undefined>()
      for (const remove of request.lookups.remove ?? []) next.set(lookupId(remove.kind, remove.key), undefined)
      const taken = (request.lookups.put ?? []).find((put) => {
        const id = lookupId(put.kind, put.key)
        const holder = next.has(id) ? next.get(id) : lookups.get(id)
        if (holder !== undefined && holder !== put.streamId) return true
        next.set(id, put.streamId)
        return false
      })
      if (taken !== undefined) {
        outcomes.push(Either.left(new LookupTaken({ kind: taken.kind })))
        continue
      }
      for (const [id, streamId] of next) {
        if (streamId === undefined) lookups.delete(id)
        else lookups.set(id, streamId)
      }
      const stored: Array<StoredEvent> = []
      request.appends.forEach((item, a) => {
        let head = heads.get(item.streamId) ?? { version: 0, hash: ZERO_HASH }
        item.events.forEach((event, e) => {
          const payloadText = request.payloads[a]![e]!
          const version = head.version + 1
          const hash = eventHash(head.hash, item.streamId, version, event.type, payloadText, recordedMs)
          const storedEvent: Positioned = {
            position: 0,
            streamId: item.streamId,
            version,
            type: event.type,
            // What read() will return later: the stored canonical JSON, not the caller's object.
            payload: JSON.parse(payloadText) as Record<string, unknown>,
            recordedAt: new Date(recordedMs),
            prevHash: head.hash,
            hash
          }
          stored.push(storedEvent)
          written.push({ event: storedEvent, payloadText })
          head = { version, hash }
        })
        if (item.events.length > 0) {
          heads.set(item.streamId, head)
          changedHeads.set(item.streamId, head)
        }
      })
      outcomes.push(Either.right(stored))
    }

    const removed: Array<{ kind: string; key: string }> = []
    const added: Array<{ kind: string; key: string; streamId: string }> = []
    const moved: Array<{ kind: string; key: string; streamId: string }> = []
    for (const [id, entry] of touched) {
      const before = lookupsBefore.get(id)
      const after = lookups.get(id)
      if (after === before) continue
      if (after === undefined) removed.push(entry)
      else if (before === undefined) added.push({ ...entry, streamId: after })
      else moved.push({ ...entry, streamId: after })
    }
    if (written.length > 0 || removed.length > 0 || added.length > 0 || moved.length > 0) {
      const changed = Array.from(changedHeads)
      const rows = yield* connection.executeValues(WRITE_SQL, [
        written.map((w) => w.event.streamId),
        written.map((w) => w.event.version),
        written.map((w) => w.event.type),
        written.map((w) => w.payloadText),
        recordedAt,
        written.map((w) => w.event.prevHash),
        written.map((w) => w.event.hash),
        changed.map(([id]) => id),
        changed.map(([, head]) => head.version),
        changed.map(([, head]) => head.hash),
        removed.map((r) => r.kind),
        removed.map((r) => r.key),
        added.map((r) => r.kind),
        added.map((r) => r.key),
        added.map((r) => r.streamId),
        moved.map((r) => r.kind),
        moved.map((r) => r.key),
        moved.map((r) => r.streamId)
      ])
      const positions = new Map(rows.map((row) => [`${row[1]}\u0000${row[2]}`, Number(row[0])]))
      for (const w of written) w.event.position = positions.get(`${w.event.streamId}\u0000${w.event.version}`)!
    }
    return outcomes
  }))
