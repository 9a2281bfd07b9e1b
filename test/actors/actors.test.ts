/**
 * Account actors against a real Postgres database: one command at a time per account, state rebuilt from events
 * after passivation, and two processes on one database (two independent actor systems) never losing a write or
 * refusing a command on stale state.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { AccountActors } from "../../src/actors/AccountActors.js"
import { CustomerAccounts } from "../../src/actors/CustomerAccounts.js"
import { Enrollment } from "../../src/actors/Enrollment.js"
import { generateIdentityKeyPair } from "../../src/crypto/identity.js"
import { AccountsLive } from "../../src/server/Accounts.js"
import type { ServerSettings } from "../../src/server/Config.js"
import { testDatabaseUrl } from "../support/database.js"

const settingsFor = (databaseUrl: string, overrides: Partial<ServerSettings> = {}): ServerSettings => ({
  host: "127.0.0.1",
  port: 0,
  publicUrl: "ws://127.0.0.1:0/rpc",
  databaseUrl: Option.some(Redacted.make(databaseUrl)),
  dataDir: "",
  tls: Option.none(),
  maxMessageBytes: 65536,
  ringSeconds: 30,
  actorIdleSeconds: 120,
  codeAttempts: 10,
  codeAttemptWindowSeconds: 900,
  admissionDeadlineSeconds: 60,
  maxPendingConnections: 4096,
  ...overrides
})

/** One "process": its own database pool, actors and caches, on the shared database. */
const system = (databaseUrl: string, masterKey: string, overrides: Partial<ServerSettings> = {}) =>
  Layer.build(AccountsLive(settingsFor(databaseUrl, overrides), { maxConnections: 2 })).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["TESSERA_MASTER_KEY", masterKey]])))
  )

const masterKey = () => randomBytes(32).toString("base64")
const profile = "c2VhbGVkLXByb2ZpbGU"

describe("account actors", () => {
  it.scopedLive("passivate when idle and come back from their events", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const context = yield* system(url, masterKey(), { actorIdleSeconds: 0.2 })
      const actors = yield* Effect.provide(AccountActors, context)
      const customers = yield* Effect.provide(CustomerAccounts, context)
      const { hostId } = yield* Effect.provide(Effect.flatMap(Enrollment, (e) => e.enrollHost()), context)
      const created = yield* customers.create(hostId, profile)
      expect(yield* actors.hosts.activeCount).toBe(1)
      yield* Effect.sleep("600 millis")
      expect(yield* actors.hosts.activeCount).toBe(0)
      const listed = yield* customers.list(hostId)
      expect(listed.map((c) => c.customerId)).toEqual([created])
      expect(listed[0]!.sealedProfile).toBe(profile)
      expect(yield* actors.hosts.activeCount).toBe(1)
    }))

  it.scopedLive("serve concurrent commands for one account one at a time, losing none", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const context = yield* system(url, masterKey())
      const customers = yield* Effect.provide(CustomerAccounts, context)
      const actors = yield* Effect.provide(AccountActors, context)
      const { hostId } = yield* Effect.provide(Effect.flatMap(Enrollment, (e) => e.enrollHost()), context)
      const ids = yield* Effect.forEach(Array.from({ length: 20 }), () => customers.create(hostId, profile), {
        concurrency: "unbounded"
      })
      expect(new Set(ids).size).toBe(20)
      yield* actors.hosts.forget(hostId)
      const listed = yield* customers.list(hostId)
      expect(listed.map((c) => c.customerId).sort()).toEqual([...ids].sort())
    }))

  it.scopedLive("two processes on one database: a conflicting append is decided again on fresh state", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const key = masterKey()
      const a = yield* system(url, key)
      const b = yield* system(url, key)
      const inA = yield* Effect.provide(CustomerAccounts, a)
      const inB = yield* Effect.provide(CustomerAccounts, b)
      const { hostId } = yield* Effect.provide(Effect.flatMap(Enrollment, (e) => e.enrollHost()), a)
      // Both load (and cache) the host, then each appends; B's cached version is stale when it writes.
      expect(yield* inA.list(hostId)).toEqual([])
      expect(yield* inB.list(hostId)).toEqual([])
      const first = yield* inA.create(hostId, profile)
      const second = yield* inB.create(hostId, profile)
      const seenByA = yield* inA.list(hostId)
      const seenByB = yield* inB.list(hostId)
      expect(seenByB.map((c) => c.customerId).sort()).toEqual([first, second].sort())
      // A's cache is behind until it is next reloaded; the store has both.
      const afterReload = yield* Effect.provide(AccountActors, a).pipe(
        Effect.tap((actors) => actors.hosts.forget(hostId)),
        Effect.zipRight(inA.list(hostId))
      )
      expect(seenByA.length).toBeGreaterThanOrEqual(1)
      expect(afterReload.map((c) => c.customerId).sort()).toEqual([first, second].sort())
    }))

  it.scopedLive("a code issued by another process is accepted although this process cached the account before", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const key = masterKey()
      const server = yield* system(url, key)
      const operator = yield* system(url, key)
      const enrollOn = (context: typeof server) => Effect.provide(Enrollment, context)
      const { hostId, code: firstCode } = yield* Effect.flatMap(enrollOn(operator), (e) => e.enrollHost())
      const keys = yield* Effect.promise(() => generateIdentityKeyPair({ extractable: false }))
      // The server caches the host while the first code is pending...
      const serverActors = yield* Effect.provide(AccountActors, server)
      yield* serverActors.hosts.read(hostId)
      // ...then the operator reissues; the first code is superseded, the new one must work on the server.
      const { code: secondCode } = yield* Effect.flatMap(enrollOn(operator), (e) => e.issueEnrollmentCode(hostId))
      const enrollment = yield* enrollOn(server)
      const config = yield* enrollment.enrollDevice(secondCode, keys.publicKeySpki)
      expect(config.body.kind).toBe("host")
      const refused = yield* Effect.flip(enrollment.enrollDevice(firstCode, keys.publicKeySpki))
      expect(refused._tag).toBe("EnrollmentCodeInvalid")
    }))
})
