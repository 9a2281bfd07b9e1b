/** Layers for event store tests: a fresh migrated Postgres database per use, the store and data keys on it. */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomBytes } from "node:crypto"
import { DataKeysLive } from "../../src/eventstore/DataKeys.js"
import { EventStoreLive } from "../../src/eventstore/EventStore.js"
import { MasterKey } from "../../src/eventstore/MasterKey.js"
import { TestDatabaseLive } from "../support/database.js"

export const StoreLive = Layer.mergeAll(EventStoreLive, DataKeysLive).pipe(
  Layer.provideMerge(TestDatabaseLive),
  Layer.provideMerge(MasterKey.fromBytes(randomBytes(32)))
)

/** Lifts a test body onto its own fresh database. */
export const onFreshDatabase = <A, E>(body: Effect.Effect<A, E, Layer.Layer.Success<typeof StoreLive>>) =>
  Effect.provide(body, StoreLive)

export const event = (type: string, payload: Record<string, unknown> = {}) => ({ type, payload })
