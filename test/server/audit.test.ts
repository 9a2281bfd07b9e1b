/**
 * What is left after the whole story on a real server (operator CLI, host, two customers, a call with signalling,
 * one account deleted): the operator's audit finds every hash chain intact; neither the database nor the server's
 * output holds a name, a code, a communication id, a key or an address; and a tampered event row is reported as
 * the first broken link, by `verifyChains` and by `tessera audit verify`.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { HostId } from "../../src/domain/ids.js"
import { DatabaseLive } from "../../src/eventstore/Database.js"
import { verifyChains } from "../../src/eventstore/Audit.js"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive, type TestServer } from "../support/server.js"
import { activate, customerDevice, enrollDevice, ERIKA, next, signIn } from "./story.js"

const BIN = fileURLToPath(new URL("../../bin/tessera.mjs", import.meta.url))
const MAX = { name: "Max Muster", customerNumber: "K-4712" }
/** Sent as a signalling payload: opaque to the server, and never stored or logged. */
const SIGNAL_MARKER = "v=0 o=- 4711 2 IN IP4 192.0.2.44 (an SDP-looking signal)"

/** `tessera ...` as the operator runs it, with the server's settings. */
const tessera = (server: TestServer, args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...server.env } })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
  })

class Story extends Context.Tag("test/Story")<Story, {
  /** Everything that must never be readable from the database or the server's output. */
  readonly secrets: ReadonlyArray<string>
  readonly hostId: string
  readonly customerIds: ReadonlyArray<string>
}>() {}

const StoryLive = Layer.scoped(
  Story,
  Effect.gen(function*() {
    const server = yield* Server
    const enrolled = yield* tessera(server, ["host", "enroll"])
    expect(enrolled).toMatchObject({ code: 0, stderr: "" })
    const enrollmentCode = /^code: +(\S+)$/m.exec(enrolled.stdout)![1]!
    const hostId = /^host id: +(\S+)$/m.exec(enrolled.stdout)![1]!

    const hostStore = Sdk.memoryKeyStore()
    const credentials = yield* enrollDevice(server, enrollmentCode, hostStore)
    const host = { hostId: hostId as HostId, credentials, store: hostStore, session: yield* signIn(server, { credentials, store: hostStore }) }
    const erika = yield* customerDevice(server, host, ERIKA)
    const max = yield* customerDevice(server, host, MAX)
    // A reissued code that nobody used, and one of a deleted account.
    const { code: reissued } = yield* host.session.rpc.host.issueActivationCode({ customerId: erika.customerId })
    const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(credentials.profileKey!, { name: "Gelöscht Gustav", customerNumber: "K-0001" }))
    const { customerId: gustav } = yield* host.session.rpc.host.createCustomer({ sealedProfile })
    const { code: gustavCode } = yield* host.session.rpc.host.issueActivationCode({ customerId: gustav })
    const gustavDevice = yield* activate(server, gustavCode)

    yield* Effect.all([host.session.setReady(true), erika.session.setReady(true)])
    const { callId } = yield* host.session.rpc.call.invite({ peer: erika.customerId })
    yield* next(erika.session, "IncomingCall", (e) => e.callId === callId)
    yield* erika.session.rpc.call.accept({ callId })
    yield* next(host.session, "CallAccepted")
    yield* host.session.rpc.call.signal({ callId, payload: new TextEncoder().encode(SIGNAL_MARKER) })
    yield* next(erika.session, "SignalReceived", (e) => e.callId === callId)
    yield* erika.session.rpc.call.hangUp({ callId })
    yield* next(host.session, "CallEnded", (e) => e.callId === callId)
    yield* host.session.rpc.host.deleteCustomer({ customerId: gustav })

    const communicationIds = [erika, max].map((c) => (c.credentials.config.body as { communicationId: string }).communicationId)
    const gustavBody = gustavDevice.config.body as { communicationId: string; deviceFingerprint: string }
    return {
      hostId,
      customerIds: [erika.customerId, max.customerId, gustav],
      secrets: [
        ERIKA.name, ERIKA.customerNumber!, "Mustermann", MAX.name, MAX.customerNumber, "Gelöscht Gustav", "K-0001",
        enrollmentCode, reissued, gustavCode, ...[enrollmentCode, reissued, gustavCode].map((c) => c.replace(/-/g, "")),
        ...communicationIds, gustavBody.communicationId,
        ...[erika, max].map((c) => c.credentials.config.body.deviceFingerprint), gustavBody.deviceFingerprint,
        credentials.config.body.deviceFingerprint,
        callId, SIGNAL_MARKER, "192.0.2.44"
      ]
    }
  }).pipe(Effect.orDie)
)

const Fixture = StoryLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(), Sdk.NodeWebSocket)))

/** Runs SQL on the server's database, as someone with database access would. */
const withSql = <A>(server: TestServer, run: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(PgClient.PgClient, run).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(server.databaseUrl), maxConnections: 1 }).pipe(Layer.provide(Reactivity.layer))),
    Effect.orDie
  )

/** Every row of every table, as `table: {json}` lines. */
const dumpDatabase = (server: TestServer) =>
  withSql(server, (sql) =>
    Effect.gen(function*() {
      const tables = yield* sql<{ table_name: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
      const lines: Array<string> = []
      for (const { table_name } of tables) {
        const rows = yield* sql.unsafe<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`)
        for (const { row } of rows) lines.push(`${table_name}: ${row}`)
      }
      return { tables: tables.map((t) => t.table_name), lines }
    }))

const audit = (server: TestServer) =>
  verifyChains().pipe(
    Effect.provide(DatabaseLive({ databaseUrl: Option.some(server.databaseUrl), dataDir: "", migrate: false, maxConnections: 1 })),
    Effect.orDie
  )

describe("audit and privacy", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "240 seconds" })((it) => {
    it.scoped("after the story every hash chain is intact (verifyChains and tessera audit verify)", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const report = yield* audit(server)
        expect(Option.isNone(report.firstBroken)).toBe(true)
        expect(report.events).toBeGreaterThan(10)
        const cli = yield* tessera(server, ["audit", "verify"])
        expect(cli.code).toBe(0)
        expect(cli.stdout).toContain("every hash chain is intact")
      }), 120_000)

    it.scoped("the database holds no name, code, communication id, fingerprint, call or signal, and no host-customer link", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { customerIds, hostId, secrets } = yield* Story
        const { lines, tables } = yield* dumpDatabase(server)
        expect(tables).toEqual(expect.arrayContaining(["events", "streams", "lookups", "data_keys"]))
        const dump = lines.join("\n")
        expect(secrets.every((secret) => typeof secret === "string" && secret.length >= 6)).toBe(true)
        for (const secret of secrets) expect(dump.includes(secret), `the database contains ${secret}`).toBe(false)
        // An account id appears only in its own rows: nothing in clear says which customers belong to which host.
        const ids = [hostId, ...customerIds]
        for (const line of lines) {
          const own = /"stream_id":"([^"]*)"/.exec(line)?.[1]
          for (const id of ids) if (id !== own) expect(line.includes(id), `a row of ${own} names ${id}`).toBe(false)
        }
      }))

    it.scoped("the server's output names no id, code, name or address beyond its start line", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { customerIds, hostId, secrets } = yield* Story
        const stdoutLines = server.stdout().split("\n").filter((line) => line !== "")
        for (const line of stdoutLines) expect(line).toMatch(/^tessera listening on ws:\/\/127\.0\.0\.1:\d+\/rpc \(postgres\)$/)
        const output = stdoutLines.map((line) => line.replace(/^tessera listening on ws:\/\/127\.0\.0\.1:\d+\/rpc/, "")).join("\n") +
          server.stderr()
        for (const secret of [...secrets, hostId, ...customerIds, "127.0.0.1", "localhost", "::1"]) {
          expect(output.includes(secret), `the server's output contains ${secret}`).toBe(false)
        }
      }))

    it.scoped("a tampered event row is reported as the first broken link", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { customerIds } = yield* Story
        // Someone with database access edits history: they have to switch off the append-only trigger first.
        const [first, second] = [...customerIds].sort()
        yield* withSql(server, (sql) =>
          Effect.gen(function*() {
            yield* sql`ALTER TABLE events DISABLE TRIGGER events_append_only`
            yield* sql`UPDATE events SET type = 'ActivationRevoked' WHERE stream_id = ${second!} AND version = 1`
            yield* sql`UPDATE events SET payload = '{"codeHash":"forged","expiresAt":0}' WHERE stream_id = ${first!} AND version = 2`
            yield* sql`ALTER TABLE events ENABLE TRIGGER events_append_only`
          }))
        const report = yield* audit(server)
        expect(report.firstBroken).toEqual(Option.some({ streamId: first, version: 2, reason: "hash-mismatch" }))
        expect(report.brokenLinks).toBe(2)
        const cli = yield* tessera(server, ["audit", "verify"])
        expect(cli.code).toBe(1)
        expect(cli.stdout).toContain(`first broken link: stream ${first} version 2 (hash-mismatch)`)
      }), 120_000)
  })
})
