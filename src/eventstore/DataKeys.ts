/**
 * Per-account data keys and crypto-shredding. Each account stream gets a random 256-bit key, kept in `data_keys`
 * wrapped (AES-256-GCM) under a sub-key of the master key; identifiers that link accounts are sealed under it
 * before they go into events. Shredding deletes the wrapped key: the events stay and still verify, but what was
 * sealed under it can never be opened again.
 *
 * Atomicity: `create` is one INSERT. Run it inside the same `sql.withTransaction` as the stream's first
 * `EventStore.append` and both commit or neither does (append nests as a savepoint). Unwrapped keys are cached
 * only outside transactions, so a rolled-back `create` never leaves a key behind in memory.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { MasterKey } from "./MasterKey.js"

export interface DataKeysService {
  /** Creates the stream's data key; does nothing if it already has one (a retried create keeps the first key). */
  readonly create: (streamId: string) => Effect.Effect<void>
  /** `v1.<iv>.<ciphertext+tag>` (base64url) under the stream's key, bound to the stream. Dies if the key is gone. */
  readonly seal: (streamId: string, plaintext: string) => Effect.Effect<string>
  /** None once the key was shredded (or never existed). Dies on a value that was not sealed for this stream. */
  readonly open: (streamId: string, sealed: string) => Effect.Effect<Option.Option<string>>
  /** Destroys the stream's data key irrecoverably. Idempotent. */
  readonly shred: (streamId: string) => Effect.Effect<void>
  readonly exists: (streamId: string) => Effect.Effect<boolean>
}

export class DataKeys extends Context.Tag("tessera/DataKeys")<DataKeys, DataKeysService>() {}

export const DATA_KEY_WRAP_PURPOSE = "tessera/data-key-wrap"

const SEALED_VERSION = "v1"
const IV_BYTES = 12
const TAG_BYTES = 16

export const makeDataKeys = (options?: { readonly cacheSize?: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const wrapKey = (yield* MasterKey).derive(DATA_KEY_WRAP_PURPOSE)
    const cache = new LruCache<string, Buffer>(options?.cacheSize ?? 10_000)

    const inTransaction = Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)

    const load = (streamId: string): Effect.Effect<Option.Option<Buffer>> =>
      Effect.suspend(() => {
        const cached = cache.get(streamId)
        if (cached !== undefined) return Effect.succeed(Option.some(cached))
        return sql<{ wrapped: string }>`SELECT wrapped FROM data_keys WHERE stream_id = ${streamId}`.pipe(
          Effect.orDie,
          Effect.flatMap((rows) => {
            if (rows.length === 0) return Effect.succeed(Option.none<Buffer>())
            const key = unseal(wrapKey, streamId, rows[0]!.wrapped)
            if (key === undefined) {
              return Effect.dieMessage("a data key does not unwrap under this master key (wrong TESSERA_MASTER_KEY?)")
            }
            return Effect.map(inTransaction, (inside) => {
              if (!inside) cache.set(streamId, key)
              return Option.some(key)
            })
          })
        )
      })

    const service: DataKeysService = {
      create: (streamId) =>
        Effect.suspend(() => {
          const key = randomBytes(32)
          const wrapped = sealWith(wrapKey, streamId, key)
          return sql<{ stream_id: string }>`
            INSERT INTO data_keys (stream_id, wrapped) VALUES (${streamId}, ${wrapped})
            ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id`.pipe(
            Effect.orDie,
            Effect.zip(inTransaction),
            Effect.map(([inserted, inside]) => {
              if (inserted.length === 1 && !inside) cache.set(streamId, key)
              else cache.delete(streamId)
            })
          )
        }),
      seal: (streamId, plaintext) =>
        Effect.flatMap(load(streamId), (key) =>
          Option.isNone(key)
            ? Effect.dieMessage("cannot seal: the account has no data key (shredded or never created)")
            : Effect.succeed(sealWith(key.value, streamId, Buffer.from(plaintext, "utf8")))),
      open: (streamId, sealed) =>
        Effect.flatMap(load(streamId), (key) => {
          if (Option.isNone(key)) return Effect.succeed(Option.none())
          const plaintext = unseal(key.value, streamId, sealed)
          return plaintext === undefined
            ? Effect.dieMessage("a sealed value does not open under its account's data key")
            : Effect.succeed(Option.some(plaintext.toString("utf8")))
        }),
      shred: (streamId) =>
        Effect.suspend(() => {
          cache.delete(streamId)
          return sql`DELETE FROM data_keys WHERE stream_id = ${streamId}`.pipe(Effect.orDie, Effect.asVoid)
        }),
      exists: (streamId) => Effect.map(load(streamId), Option.isSome)
    }
    return service
  })

export const DataKeysLive: Layer.Layer<DataKeys, never, SqlClient.SqlClient | MasterKey> = Layer.effect(
  DataKeys,
  makeDataKeys()
)

/** AES-256-GCM with a random 96-bit IV; the stream id is the additional data, so a value cannot move accounts. */
const sealWith = (key: Uint8Array, streamId: string, plaintext: Uint8Array): string => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(Buffer.from(streamId, "utf8"))
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  return `${SEALED_VERSION}.${iv.toString("base64url")}.${ciphertext.toString("base64url")}`
}

const unseal = (key: Uint8Array, streamId: string, sealed: string): Buffer | undefined => {
  const parts = sealed.split(".")
  if (parts.length !== 3 || parts[0] !== SEALED_VERSION) return undefined
  const iv = Buffer.from(parts[1]!, "base64url")
  const body = Buffer.from(parts[2]!, "base64url")
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(streamId, "utf8"))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()])
  } catch {
    return undefined
  }
}

/** A Map kept in recency order: reads move an entry to the end, inserts past capacity drop the oldest. */
class LruCache<K, V> {
  private readonly entries = new Map<K, V>()
  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key)
    if (value !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, value)
    }
    return value
  }

  set(key: K, value: V): void {
    this.entries.delete(key)
    this.entries.set(key, value)
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K)
  }

  delete(key: K): void {
    this.entries.delete(key)
  }
}
