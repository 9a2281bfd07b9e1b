/**
 * The event store: append with expected versions (several streams and lookup changes in one transaction), read a
 * stream, read the whole log in global order, and look up a stream by a keyed hash.
 *
 * Group commit: while earlier batches are in flight, concurrent callers' requests queue up and go out together as
 * one batch transaction (src/eventstore/Append.ts) — one commit for many appends, each request still all or
 * nothing on its own. No timer: an idle store sends a lone request at once. Two writers with the same expected
 * version: whichever is decided second — in the same batch, or after waiting on the other's row lock — sees the
 * moved head and gets VersionConflict; unique (stream_id, version) is the backstop.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import {
  type AppendRequest,
  appendBatch,
  type LookupChange,
  type LookupTaken,
  prepareAppend,
  type StoredEvent,
  type StreamAppend,
  type VersionConflict
} from "./Append.js"

export { LookupTaken, VersionConflict } from "./Append.js"
export type { LookupChange, NewEvent, StoredEvent, StreamAppend } from "./Append.js"

export interface EventStoreService {
  /**
   * One transaction over all streams and lookup changes: either every event is stored and every lookup changed,
   * or nothing is. Returns the stored events in the order given. Inside a caller's `sql.withTransaction` it runs
   * as a savepoint, so a caught conflict leaves the caller's transaction usable.
   */
  readonly append: (
    appends: ReadonlyArray<StreamAppend>,
    lookups?: LookupChange
  ) => Effect.Effect<ReadonlyArray<StoredEvent>, VersionConflict | LookupTaken>
  readonly read: (streamId: string) => Effect.Effect<ReadonlyArray<StoredEvent>>
  /** Events in the stream (0 if it does not exist). */
  readonly version: (streamId: string) => Effect.Effect<number>
  readonly lookup: (kind: string, key: string) => Effect.Effect<Option.Option<string>>
  /** The whole log in global order, fetched in batches (default 1,000) by position. */
  readonly readAll: (options?: { readonly batchSize?: number }) => Stream.Stream<StoredEvent>
  readonly streamCount: Effect.Effect<number>
  readonly eventCount: Effect.Effect<number>
}

export class EventStore extends Context.Tag("tessera/EventStore")<EventStore, EventStoreService>() {}

interface EventRow {
  readonly position: string
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly payload: Record<string, unknown>
  readonly recorded_at: Date
  readonly prev_hash: string
  readonly hash: string
}

const toStoredEvent = (row: EventRow): StoredEvent => ({
  position: Number(row.position),
  streamId: row.stream_id,
  version: row.version,
  type: row.type,
  payload: row.payload,
  recordedAt: row.recorded_at,
  prevHash: row.prev_hash,
  hash: row.hash
})

const EVENT_COLUMNS = "position, stream_id, version, type, payload, recorded_at, prev_hash, hash"

/** Unique violations, deadlocks and serialization failures: another transaction won a race; trying again decides. */
const isRace = (cause: Cause.Cause<unknown>): boolean => {
  const error = Cause.squash(cause) as { readonly cause?: { readonly code?: unknown } }
  const code = error?.cause?.code
  return code === "23505" || code === "40P01" || code === "40001"
}

interface Pending {
  readonly request: AppendRequest
  readonly outcome: Deferred.Deferred<ReadonlyArray<StoredEvent>, VersionConflict | LookupTaken>
}

export interface EventStoreOptions {
  /** Requests per batch transaction (default 64). */
  readonly maxBatch?: number
  /** Batch transactions in flight at once (default 4; the embedded database runs them one by one). */
  readonly concurrentBatches?: number
}

export const makeEventStore = (options?: EventStoreOptions) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const maxBatch = options?.maxBatch ?? 64
  const permits = yield* Effect.makeSemaphore(options?.concurrentBatches ?? 4)
  const queue = yield* Queue.unbounded<Pending>()

  const settle = (batch: ReadonlyArray<Pending>, attempt = 1): Effect.Effect<void> =>
    appendBatch(sql, batch.map((pending) => pending.request)).pipe(
      Effect.flatMap((outcomes) =>
        Effect.forEach(batch, (pending, i) => Deferred.complete(pending.outcome, outcomes[i]!), { discard: true })
      ),
      Effect.catchAllCause((cause) =>
        batch.length > 1
          // A race with another transaction (or one bad request) failed the whole batch: settle each on its own.
          ? Effect.forEach(batch, (pending) => settle([pending]), { discard: true })
          : attempt < 3 && isRace(cause)
          ? settle(batch, attempt + 1)
          : Deferred.die(batch[0]!.outcome, Cause.squash(cause))
      ),
      Effect.onInterrupt(() => Effect.forEach(batch, (pending) => Deferred.interrupt(pending.outcome), { discard: true }))
    )
  yield* Effect.addFinalizer(() =>
    Effect.flatMap(Queue.takeAll(queue), (left) => Effect.forEach(left, (pending) => Deferred.interrupt(pending.outcome), { discard: true }))
  )
  yield* permits.take(1).pipe(
    Effect.zipRight(Queue.takeBetween(queue, 1, maxBatch)),
    Effect.flatMap((batch) => Effect.fork(Effect.ensuring(settle(Chunk.toReadonlyArray(batch)), permits.release(1)))),
    Effect.forever,
    Effect.forkScoped
  )

  const append: EventStoreService["append"] = (appends, lookups) =>
    Effect.suspend(() => {
      const request = prepareAppend(appends, lookups)
      return Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        Option.isSome(transaction)
          // Inside the caller's transaction: on its connection, now, as a savepoint. A refusal writes nothing,
          // so the caller's transaction stays usable.
          ? appendBatch(sql, [request]).pipe(
            Effect.orDie,
            Effect.flatMap((outcomes) => Either.match(outcomes[0]!, { onLeft: Effect.fail, onRight: Effect.succeed }))
          )
          : Effect.flatMap(Deferred.make<ReadonlyArray<StoredEvent>, VersionConflict | LookupTaken>(), (outcome) =>
            Effect.zipRight(Queue.offer(queue, { request, outcome }), Deferred.await(outcome))))
    })

  const read: EventStoreService["read"] = (streamId) =>
    sql.unsafe<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version`, [streamId]).pipe(
      Effect.map((rows) => rows.map(toStoredEvent)),
      Effect.orDie
    )

  const version: EventStoreService["version"] = (streamId) =>
    sql<{ version: number }>`SELECT version FROM streams WHERE stream_id = ${streamId}`.pipe(
      Effect.map((rows) => rows[0]?.version ?? 0),
      Effect.orDie
    )

  const lookup: EventStoreService["lookup"] = (kind, key) =>
    sql<{ stream_id: string }>`SELECT stream_id FROM lookups WHERE kind = ${kind} AND key = ${key}`.pipe(
      Effect.map((rows) => Option.fromNullable(rows[0]?.stream_id)),
      Effect.orDie
    )

  const readAll: EventStoreService["readAll"] = (options) => {
    const batchSize = options?.batchSize ?? 1_000
    return Stream.paginateChunkEffect(0, (after: number) =>
      sql.unsafe<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2`,
        [after, batchSize]
      ).pipe(
        Effect.orDie,
        Effect.map((rows) => {
          const events = rows.map(toStoredEvent)
          const last = events[events.length - 1]
          return [
            Chunk.unsafeFromArray(events),
            rows.length < batchSize || last === undefined ? Option.none() : Option.some(last.position)
          ] as const
        })
      ))
  }

  const count = (query: string) =>
    sql.unsafe<{ n: string }>(query).pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0)), Effect.orDie)

  return EventStore.of({
    append,
    read,
    version,
    lookup,
    readAll,
    streamCount: count("SELECT count(*) AS n FROM streams WHERE version > 0"),
    eventCount: count("SELECT count(*) AS n FROM events")
  })
})

export const EventStoreLive: Layer.Layer<EventStore, never, SqlClient.SqlClient> = Layer.scoped(EventStore, makeEventStore())
