/**
 * The operator's audit: verify every stream's hash chain from the stored rows, and replay the log as per-stream
 * lifecycles that carry opaque ids only (never a payload, so never a sealed or decrypted field).
 *
 * Both scan the log in (stream id, version) order in keyset-paginated batches: constant memory however long the
 * log, no long transaction (each batch is its own snapshot), and safe while the server keeps appending.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { eventHash, ZERO_HASH } from "./HashChain.js"

export type BrokenLinkReason = "hash-mismatch" | "prev-hash-mismatch" | "version-gap"

export interface BrokenLink {
  readonly streamId: string
  /** The version whose link is broken: the event whose hash or prev_hash is wrong, or the first missing one. */
  readonly version: number
  readonly reason: BrokenLinkReason
}

export interface AuditReport {
  readonly streams: number
  readonly events: number
  /** The first broken link in (stream id, version) order. */
  readonly firstBroken: Option.Option<BrokenLink>
  /** How many links are broken in all (an edited event usually breaks its own hash and its successor's link). */
  readonly brokenLinks: number
}

export interface AuditOptions {
  readonly onProgress?: (eventsDone: number, total: number) => Effect.Effect<void>
  /** Rows per query (default 5,000). */
  readonly batchSize?: number
}

/** A stream's events as the audit may show them: ids, versions, types and dates, nothing from the payload. */
export interface StreamLifecycle {
  readonly streamId: string
  readonly events: ReadonlyArray<{ readonly version: number; readonly type: string; readonly recordedAt: Date }>
}

const DEFAULT_BATCH = 5_000

const countEvents = (sql: SqlClient.SqlClient) =>
  Effect.map(sql.unsafe<{ n: string }>("SELECT count(*) AS n FROM events"), (rows) => Number(rows[0]?.n ?? 0))

/**
 * Pages through `columns` of events (joined with their stream head as `s`) in (stream_id, version) order.
 * Column 0 must be the stream id and column 1 the version: they are the keyset cursor.
 */
const scan = (
  sql: SqlClient.SqlClient,
  columns: string,
  batchSize: number
): Stream.Stream<ReadonlyArray<ReadonlyArray<unknown>>, never> =>
  Stream.paginateEffect(
    Option.none<readonly [string, number]>(),
    (after) => {
      const query = Option.match(after, {
        onNone: () => sql.unsafe(`SELECT ${columns} ORDER BY e.stream_id, e.version LIMIT $1`, [batchSize]),
        onSome: ([streamId, version]) =>
          sql.unsafe(
            `SELECT ${columns} WHERE (e.stream_id, e.version) > ($1, $2) ORDER BY e.stream_id, e.version LIMIT $3`,
            [streamId, version, batchSize]
          )
      })
      return query.values.pipe(
        Effect.orDie,
        Effect.map((rows) => {
          const last = rows[rows.length - 1]
          const next = rows.length < batchSize || last === undefined
            ? Option.none()
            : Option.some(Option.some([last[0] as string, last[1] as number] as const))
          return [rows, next] as const
        })
      )
    }
  ).pipe(Stream.filter((rows) => rows.length > 0))

const VERIFY_COLUMNS = `e.stream_id, e.version, e.type, e.payload::text,
  (extract(epoch FROM e.recorded_at) * 1000)::int8::text, e.prev_hash, e.hash, s.version, s.head_hash
  FROM events e LEFT JOIN streams s ON s.stream_id = e.stream_id`

/**
 * Checks each event: its version follows the previous one (else "version-gap" at the first missing version), its
 * prev_hash is the previous event's stored hash ("prev-hash-mismatch"), and its hash is the hash of its own
 * fields ("hash-mismatch"). The stream head written with every append vouches for the tail: a head further than
 * the stored events is a "version-gap" after the last one; a head hash that differs from the event at the head's
 * version (or a missing head) is a "hash-mismatch" there. A stream whose events were all deleted shows as a
 * "version-gap" at version 1.
 */
export const verifyChains = (options?: AuditOptions): Effect.Effect<AuditReport, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const batchSize = options?.batchSize ?? DEFAULT_BATCH
    const total = yield* Effect.orDie(countEvents(sql))

    let streams = 0
    let events = 0
    let brokenLinks = 0
    let firstBroken = Option.none<BrokenLink>()
    const broken = (streamId: string, version: number, reason: BrokenLinkReason) => {
      brokenLinks++
      if (Option.isNone(firstBroken)) firstBroken = Option.some({ streamId, version, reason })
    }

    // The current stream: its previous stored hash and version, and the head as first seen. Heads only move
    // forward, and a head's events commit with it, so the head first seen is covered by what the scan reads next.
    let current: string | undefined
    let lastVersion = 0
    let lastHash = ZERO_HASH
    let headVersion = 0
    let headHash: string | null = null
    const finishStream = () => {
      if (current === undefined) return
      if (headHash === null) broken(current, lastVersion, "hash-mismatch")
      else if (headVersion > lastVersion) broken(current, lastVersion + 1, "version-gap")
    }

    yield* scan(sql, VERIFY_COLUMNS, batchSize).pipe(
      Stream.runForEach((rows) => {
        for (const row of rows) {
          const streamId = row[0] as string
          const version = row[1] as number
          const prevHash = row[5] as string
          const hash = row[6] as string
          if (streamId !== current) {
            finishStream()
            current = streamId
            streams++
            lastVersion = 0
            lastHash = ZERO_HASH
            headVersion = (row[7] as number | null) ?? 0
            headHash = row[8] as string | null
          }
          events++
          if (version !== lastVersion + 1) {
            broken(streamId, lastVersion + 1, "version-gap")
          } else if (prevHash !== lastHash) {
            broken(streamId, version, "prev-hash-mismatch")
          }
          const recomputed = eventHash(prevHash, streamId, version, row[2] as string, row[3] as string, Number(row[4]))
          if (recomputed !== hash) broken(streamId, version, "hash-mismatch")
          else if (version === headVersion && headHash !== null && hash !== headHash) {
            broken(streamId, version, "hash-mismatch")
          }
          lastVersion = version
          lastHash = hash
        }
        return options?.onProgress ? options.onProgress(events, Math.max(total, events)) : Effect.void
      })
    )
    finishStream()

    const emptied = yield* sql<{ stream_id: string }>`
      SELECT s.stream_id FROM streams s
      WHERE s.version > 0 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id)
      ORDER BY s.stream_id`.pipe(Effect.orDie)
    for (const row of emptied) {
      streams++
      broken(row.stream_id, 1, "version-gap")
    }

    return { streams, events, firstBroken, brokenLinks }
  })

const REPLAY_COLUMNS = "e.stream_id, e.version, e.type, e.recorded_at FROM events e"

/** Every stream's lifecycle in stream id order, one element per stream. */
export const replay = (options?: AuditOptions): Stream.Stream<StreamLifecycle, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const total = yield* Effect.orDie(countEvents(sql))
    let done = 0
    return scan(sql, REPLAY_COLUMNS, options?.batchSize ?? DEFAULT_BATCH).pipe(
      Stream.tap((rows) => {
        done += rows.length
        return options?.onProgress ? options.onProgress(done, Math.max(total, done)) : Effect.void
      }),
      Stream.flattenIterables,
      Stream.groupAdjacentBy((row) => row[0] as string),
      Stream.map(([streamId, rows]): StreamLifecycle => ({
        streamId,
        events: Chunk.toReadonlyArray(Chunk.map(rows, (row) => ({
          version: row[1] as number,
          type: row[2] as string,
          recordedAt: row[3] as Date
        })))
      }))
    )
  }).pipe(Stream.unwrap)

/** Plain-text lines for a lifecycle: the stream id, then one line per event with version, date and type. */
export const formatLifecycle = (lifecycle: StreamLifecycle): ReadonlyArray<string> => [
  `stream ${lifecycle.streamId} (${lifecycle.events.length} event${lifecycle.events.length === 1 ? "" : "s"})`,
  ...lifecycle.events.map((event) => `  v${event.version}  ${event.recordedAt.toISOString().slice(0, 10)}  ${event.type}`)
]
