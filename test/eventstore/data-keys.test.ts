import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { randomBytes } from "node:crypto"
import { verifyChains } from "../../src/eventstore/Audit.js"
import { DataKeys, makeDataKeys } from "../../src/eventstore/DataKeys.js"
import { MasterKey } from "../../src/eventstore/MasterKey.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { event, onFreshDatabase } from "./fixtures.js"

describe("DataKeys", () => {
  it.live("seals and opens per account; a value sealed for one account does not open for another", () =>
    onFreshDatabase(Effect.gen(function*() {
      const keys = yield* DataKeys
      yield* keys.create("customer-1")
      yield* keys.create("customer-2")
      const sealed = yield* keys.seal("customer-1", "communication-id-Ω")
      const again = yield* keys.seal("customer-1", "communication-id-Ω")

      expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
      expect(sealed).not.toContain("communication")
      expect(again).not.toBe(sealed)
      expect(yield* keys.open("customer-1", sealed)).toEqual(Option.some("communication-id-Ω"))
      expect(Exit.isFailure(yield* Effect.exit(keys.open("customer-2", sealed)))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(keys.open("customer-1", sealed.slice(0, -2) + "AA")))).toBe(true)
    })))

  it.live("keys are stored wrapped under the master key, never in events; a new process reads them back", () =>
    onFreshDatabase(Effect.gen(function*() {
      const keys = yield* DataKeys
      const sql = yield* SqlClient.SqlClient
      yield* keys.create("customer-1")
      const sealed = yield* keys.seal("customer-1", "secret")
      const rows = yield* sql<{ wrapped: string }>`SELECT wrapped FROM data_keys`
      expect(rows).toHaveLength(1)
      expect(rows[0]!.wrapped).toMatch(/^v1\./)
      // A second create keeps the first key.
      yield* keys.create("customer-1")
      expect(yield* keys.open("customer-1", sealed)).toEqual(Option.some("secret"))

      // A fresh service has an empty cache, as after a restart: the key comes back from the table.
      const restarted = yield* makeDataKeys()
      expect(yield* restarted.open("customer-1", sealed)).toEqual(Option.some("secret"))
      const wrongMaster = yield* makeDataKeys().pipe(Effect.provide(MasterKey.fromBytes(randomBytes(32))))
      const refused = yield* Effect.exit(wrongMaster.open("customer-1", sealed))
      expect(Exit.isFailure(refused) && String(Cause.squash(refused.cause))).toContain("wrong TESSERA_MASTER_KEY")
    })))

  it.live("shredding makes sealed values unreadable while the events still verify", () =>
    onFreshDatabase(Effect.gen(function*() {
      const keys = yield* DataKeys
      const store = yield* EventStore
      yield* keys.create("customer-1")
      const sealed = yield* keys.seal("customer-1", "communication-id")
      yield* store.append([{ streamId: "customer-1", expectedVersion: 0, events: [event("CustomerActivated", { communicationId: sealed })] }])
      expect(yield* keys.open("customer-1", sealed)).toEqual(Option.some("communication-id"))

      yield* keys.shred("customer-1")
      yield* store.append([{ streamId: "customer-1", expectedVersion: 1, events: [event("CustomerAccountDeleted")] }])
      yield* keys.shred("customer-1")

      const stored = (yield* store.read("customer-1"))[0]!.payload["communicationId"] as string
      expect(yield* keys.open("customer-1", stored)).toEqual(Option.none())
      expect(yield* keys.exists("customer-1")).toBe(false)
      expect(Exit.isFailure(yield* Effect.exit(keys.seal("customer-1", "more")))).toBe(true)
      const report = yield* verifyChains()
      expect([report.events, report.brokenLinks]).toEqual([2, 0])
    })))

  it.live("create and the first append in one transaction: a conflicting append leaves no key behind", () =>
    onFreshDatabase(Effect.gen(function*() {
      const keys = yield* DataKeys
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      yield* store.append([{ streamId: "customer-1", expectedVersion: 0, events: [event("Elsewhere")] }])
      const createAccount = sql.withTransaction(Effect.gen(function*() {
        yield* keys.create("customer-1")
        const sealed = yield* keys.seal("customer-1", "id")
        return yield* store.append([{ streamId: "customer-1", expectedVersion: 0, events: [event("Created", { id: sealed })] }])
      }))
      const failed = yield* Effect.flip(createAccount)
      expect(failed._tag).toBe("VersionConflict")
      expect(yield* keys.exists("customer-1")).toBe(false)

      const created = yield* sql.withTransaction(Effect.gen(function*() {
        yield* keys.create("customer-2")
        const sealed = yield* keys.seal("customer-2", "id-2")
        return yield* store.append([{ streamId: "customer-2", expectedVersion: 0, events: [event("Created", { id: sealed })] }])
      }))
      expect(yield* keys.open("customer-2", created[0]!.payload["id"] as string)).toEqual(Option.some("id-2"))
    })))
})
