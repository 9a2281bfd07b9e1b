/**
 * The operator CLI as the operator runs it: `node bin/tessera.mjs ...` in a child process, against a fresh Postgres
 * database per test (DATABASE_URL) or an embedded database in a scratch data directory.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { DatabaseLive } from "../../src/eventstore/Database.js"
import { withTestDatabase } from "../support/database.js"

const BIN = fileURLToPath(new URL("../../bin/tessera.mjs", import.meta.url))
/** Each run starts tsx and loads the database driver: about 2 s, several times that on a loaded machine. */
const TIMEOUT = 180_000

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The CLI with exactly the given tessera settings (none inherited), run from a scratch directory. */
const tessera = (args: ReadonlyArray<string>, settings: Readonly<Record<string, string>> = {}) =>
  Effect.async<Run>((resume) => {
    const env: Record<string, string | undefined> = { ...process.env }
    for (const name of Object.keys(env)) if (name === "DATABASE_URL" || name.startsWith("TESSERA_")) delete env[name]
    const child = spawn(process.execPath, [BIN, ...args], { cwd: tmpdir(), env: { ...env, ...settings } })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
  })

const masterKey = () => randomBytes(32).toString("base64")

/** The settings of a server on that database. */
const onDatabase = (url: string) => ({ DATABASE_URL: url, TESSERA_MASTER_KEY: masterKey() })

/** Direct SQL on the test database, as someone with database access would do it. */
const sql = (url: string, statements: ReadonlyArray<string>) =>
  Effect.flatMap(PgClient.PgClient, (client) => Effect.forEach(statements, (statement) => client.unsafe(statement))).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }).pipe(Layer.provide(Reactivity.layer))),
    Effect.orDie
  )

const CODE = /^code: {5}([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})$/m
const HOST_ID = /^host id: {2}(h_[0-9A-Za-z_-]{22})$/m
const EXPIRES = /^expires: {2}(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/m

/** The three fields `host enroll`/`host code` print, and nothing else. */
const issued = (run: Run) => {
  expect(run).toMatchObject({ code: 0, stderr: "" })
  expect(run.stdout.split("\n")).toHaveLength(4)
  return {
    hostId: HOST_ID.exec(run.stdout)![1]!,
    code: CODE.exec(run.stdout)![1]!,
    expiresAt: Date.parse(EXPIRES.exec(run.stdout)![1]!)
  }
}

const DAY = 86_400_000

const scratchDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-cli-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("tessera CLI", () => {
  it.live("answers --help for every command on stdout, exit 0", () =>
    Effect.gen(function*() {
      const helps: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--help"], "usage: tessera COMMAND"],
        [["help"], "usage: tessera COMMAND"],
        [["help", "audit"], "usage: tessera audit verify"],
        [["migrate", "--help"], "usage: tessera migrate"],
        [["host", "--help"], "usage: tessera host enroll"],
        [["host", "enroll", "--help"], "usage: tessera host enroll"],
        [["host", "code", "-h"], "usage: tessera host enroll"],
        [["audit", "--help"], "usage: tessera audit verify"],
        [["audit", "verify", "--help"], "usage: tessera audit verify"],
        [["audit", "replay", "--help"], "usage: tessera audit verify"],
        [["kat", "--help"], "usage: tessera kat sframe FILE.json"]
      ]
      const runs = yield* Effect.forEach(helps, ([args]) => tessera(args), { concurrency: 3 })
      runs.forEach((run, i) => {
        expect(run, helps[i]![0].join(" ")).toMatchObject({ code: 0, stderr: "" })
        expect(run.stdout.startsWith(helps[i]![1]), helps[i]![0].join(" ")).toBe(true)
      })
      expect(runs[0]!.stdout).toContain("audit replay")
    }), TIMEOUT)

  it.live("refuses unknown commands, flags and bad arguments with the usage on stderr, exit 2", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [[], "usage: tessera COMMAND"],
        [["frobnicate"], "tessera: unknown command \"frobnicate\"\n\nusage: tessera COMMAND"],
        [["help", "frobnicate"], "tessera: unknown command \"frobnicate\""],
        [["host"], "usage: tessera host enroll"],
        [["host", "delete"], "tessera: unknown command \"delete\""],
        [["host", "enroll", "--bogus"], "tessera: unknown option '--bogus'\n\nusage: tessera host enroll"],
        [["host", "enroll", "--valid-for"], "tessera: option '--valid-for <value>' argument missing"],
        [["host", "enroll", "--valid-for", "8d"], "tessera: --valid-for: expected seconds or e.g. 90m, 12h, 3d, at most 7d"],
        [["host", "enroll", "--valid-for", "soon"], "tessera: --valid-for: expected"],
        [["host", "enroll", "extra"], "tessera: too many arguments"],
        [["host", "code"], "tessera: missing argument"],
        [["host", "code", "not-a-host"], "tessera: HOST_ID: expected h_ and 22 letters, digits, - or _"],
        [["migrate", "--force"], "tessera: unknown option '--force'\n\nusage: tessera migrate"],
        [["audit", "verify", "everything"], "tessera: too many arguments\n\nusage: tessera audit verify"],
        [["audit", "rewrite"], "tessera: unknown command \"rewrite\""],
        [["kat", "aes"], "usage: tessera kat sframe FILE.json"]
      ]
      const runs = yield* Effect.forEach(cases, ([args]) => tessera(args), { concurrency: 3 })
      runs.forEach((run, i) => {
        const [args, stderr] = cases[i]!
        expect(run, args.join(" ")).toMatchObject({ code: 2, stdout: "" })
        expect(run.stderr.startsWith(stderr), `${args.join(" ")}: ${run.stderr}`).toBe(true)
      })
    }), TIMEOUT)

  it.live("migrate applies the migrations once, then finds the database up to date", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const settings = { DATABASE_URL: url }
        expect(yield* tessera(["migrate"], settings)).toEqual({ code: 0, stdout: "applied 0001_event_store\n", stderr: "" })
        expect(yield* tessera(["migrate"], settings)).toEqual({ code: 0, stdout: "the database is up to date\n", stderr: "" })
      })
    ), TIMEOUT)

  it.live("host enroll prints a host id, a one-time code and its expiry; host code supersedes it; the audit passes", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const settings = onDatabase(url)
        const started = Date.now()
        const first = issued(yield* tessera(["host", "enroll"], settings))
        const second = issued(yield* tessera(["host", "enroll", "--valid-for", "3d"], settings))
        expect(first.hostId).not.toBe(second.hostId)
        expect(first.code).not.toBe(second.code)
        expect(first.expiresAt).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 + 7 * DAY)
        expect(first.expiresAt).toBeLessThanOrEqual(Date.now() + 7 * DAY)
        expect(second.expiresAt).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 + 3 * DAY)
        expect(second.expiresAt).toBeLessThanOrEqual(Date.now() + 3 * DAY)

        const reissued = issued(yield* tessera(["host", "code", first.hostId, "--valid-for", "90m"], settings))
        expect(reissued.hostId).toBe(first.hostId)
        expect(reissued.code).not.toBe(first.code)
        expect(reissued.expiresAt).toBeLessThanOrEqual(Date.now() + 90 * 60_000)

        const unknownHost = `h_${"A".repeat(22)}`
        expect(yield* tessera(["host", "code", unknownHost], settings)).toEqual({ code: 1, stdout: "", stderr: "tessera: no such host\n" })

        expect(yield* tessera(["audit", "verify"], settings)).toEqual({
          code: 0,
          stdout: "2 streams, 6 events: every hash chain is intact\n",
          stderr: ""
        })
      })
    ), TIMEOUT)

  it.live("audit verify exits 1 and names the first broken link of a tampered event", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const settings = onDatabase(url)
        const hosts = [issued(yield* tessera(["host", "enroll"], settings)), issued(yield* tessera(["host", "enroll"], settings))]
        const victim = hosts.map((host) => host.hostId).sort()[1]!
        yield* sql(url, [
          "ALTER TABLE events DISABLE TRIGGER events_append_only",
          `UPDATE events SET type = 'HostDeviceEnrolled' WHERE stream_id = '${victim}' AND version = 1`,
          "ALTER TABLE events ENABLE TRIGGER events_append_only"
        ])
        expect(yield* tessera(["audit", "verify"], { DATABASE_URL: url })).toEqual({
          code: 1,
          stdout: `2 streams, 4 events: 1 broken link\nfirst broken link: stream ${victim} version 1 (hash-mismatch)\n`,
          stderr: ""
        })
      })
    ), TIMEOUT)

  it.live("audit replay lists each stream's lifecycle with opaque ids only, no progress for a short log", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const settings = onDatabase(url)
        const a = issued(yield* tessera(["host", "enroll"], settings))
        const b = issued(yield* tessera(["host", "enroll"], settings))
        const reissued = issued(yield* tessera(["host", "code", b.hostId], settings))
        const run = yield* tessera(["audit", "replay"], { DATABASE_URL: url })
        expect(run).toMatchObject({ code: 0, stderr: "" })
        const day = "\\d{4}-\\d\\d-\\d\\d"
        const types: Record<string, ReadonlyArray<string>> = {
          [a.hostId]: ["HostEnrolled", "HostEnrollmentCodeIssued"],
          [b.hostId]: ["HostEnrolled", "HostEnrollmentCodeIssued", "HostEnrollmentCodeSuperseded", "HostEnrollmentCodeIssued"]
        }
        const expected = [
          ...[a.hostId, b.hostId].sort().flatMap((hostId) => [
            `stream ${hostId} \\(${types[hostId]!.length} events\\)`,
            ...types[hostId]!.map((type, i) => `  v${i + 1}  ${day}  ${type}`)
          ]),
          "2 streams, 6 events",
          ""
        ]
        const lines = run.stdout.split("\n")
        expect(lines).toHaveLength(expected.length)
        lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^${expected[i]}$`)))
        for (const code of [a.code, b.code, reissued.code]) expect(run.stdout).not.toContain(code)
      })
    ), TIMEOUT)

  it.live("audit replay and verify show their progress on stderr for a long log", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const settings = onDatabase(url)
        const host = issued(yield* tessera(["host", "enroll"], settings))
        // 6,000 made-up events in one stream, written past the event store: more than one batch of the scan.
        yield* sql(url, [
          `INSERT INTO events (stream_id, version, type, payload, recorded_at, prev_hash, hash)
           SELECT 'zz-long', n, 'Synthetic', '{}', now(), 'x', 'x' FROM generate_series(1, 6000) AS n`
        ])
        const replayed = yield* tessera(["audit", "replay"], { DATABASE_URL: url })
        expect(replayed.code).toBe(0)
        expect(replayed.stderr).toBe("audit replay: 5000 of 6002 events\naudit replay: 6002 of 6002 events\n")
        const lines = replayed.stdout.split("\n")
        expect(lines[0]).toBe(`stream ${host.hostId} (2 events)`)
        expect(lines[3]).toBe("stream zz-long (6000 events)")
        expect(lines.at(-2)).toBe("2 streams, 6002 events")

        const verified = yield* tessera(["audit", "verify"], { DATABASE_URL: url })
        expect(verified.code).toBe(1)
        expect(verified.stderr).toBe("audit verify: 5000 of 6002 events\naudit verify: 6002 of 6002 events\n")
        expect(verified.stdout).toMatch(/^2 streams, 6002 events: \d+ broken links\nfirst broken link: stream zz-long version 1 \(prev-hash-mismatch\)\n$/)
      })
    ), TIMEOUT)

  it.live("with DATABASE_URL and no master key, host commands fail with one clear line; the audit needs no key", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        expect(yield* tessera(["host", "enroll"], { DATABASE_URL: url })).toEqual({
          code: 1,
          stdout: "",
          stderr: "tessera: DATABASE_URL is set but no master key is configured: set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE\n"
        })
        expect(yield* tessera(["host", "enroll"], { DATABASE_URL: url, TESSERA_MASTER_KEY: "not-a-key" })).toEqual({
          code: 1,
          stdout: "",
          stderr: "tessera: TESSERA_MASTER_KEY: expected 32 bytes as base64, base64url or hex\n"
        })
        expect(yield* tessera(["audit", "verify"], { DATABASE_URL: url })).toEqual({
          code: 0,
          stdout: "0 streams, 0 events: every hash chain is intact\n",
          stderr: ""
        })
      })
    ), TIMEOUT)

  it.live("an unreachable database is one line on stderr, exit 1", () =>
    withTestDatabase((url) =>
      Effect.gen(function*() {
        const missing = new URL(url)
        missing.pathname = `${missing.pathname}_missing`
        expect(yield* tessera(["audit", "verify"], { DATABASE_URL: missing.toString() })).toEqual({
          code: 1,
          stdout: "",
          stderr: `tessera: cannot connect to Postgres: database "${missing.pathname.slice(1)}" does not exist\n`
        })
      })
    ), TIMEOUT)

  it.scopedLive("embedded database: hosts persist across runs in TESSERA_DATA_DIR; refused while another process has it", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* scratchDir, "data")
      const settings = { TESSERA_DATA_DIR: dataDir }
      const first = issued(yield* tessera(["host", "enroll"], settings))
      const second = issued(yield* tessera(["host", "enroll"], settings))
      expect(first.hostId).not.toBe(second.hostId)
      expect(statSync(join(dataDir, "master.key")).mode & 0o777).toBe(0o600)

      expect(yield* tessera(["audit", "verify"], settings)).toEqual({
        code: 0,
        stdout: "2 streams, 4 events: every hash chain is intact\n",
        stderr: ""
      })
      const replayed = yield* tessera(["audit", "replay"], settings)
      expect(replayed.stdout).toContain(`stream ${first.hostId} (2 events)`)
      expect(replayed.stdout).toContain(`stream ${second.hostId} (2 events)`)

      // What the server holds while it runs: the embedded database layer on this data directory.
      yield* Layer.build(DatabaseLive({ databaseUrl: undefined, dataDir }))
      expect(yield* tessera(["host", "enroll"], settings)).toEqual({
        code: 1,
        stdout: "",
        stderr: "tessera: the data directory is in use by another tessera process: stop the server first, or use DATABASE_URL\n"
      })
    }), TIMEOUT)
})
