/**
 * `npm run demo` as a user runs it: a child process (the coordinator, a server, the CLI and two client processes),
 * once on the embedded database and once with DATABASE_URL on a fresh Postgres database. It must exit 0, print
 * every step as passed, and print no code, id, key or address.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { PROFILE, STEP_TITLES, STEPS } from "../../src/demo/steps.js"
import { testDatabaseUrl } from "../support/database.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** The demo starts four tsx processes, a database and RSA-4096 key generation: minutes on a loaded machine. */
const TIMEOUT = 600_000

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * `npm run --silent demo` with only the given tessera settings. It runs in its own process group, so that a test
 * timeout takes down the coordinator and everything it started.
 */
const demo = (settings: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const env: Record<string, string | undefined> = { ...process.env }
      for (const name of Object.keys(env)) if (name === "DATABASE_URL" || name.startsWith("TESSERA_")) delete env[name]
      return spawn("npm", ["run", "--silent", "demo"], {
        cwd: ROOT,
        env: { ...env, ...settings },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"]
      })
    }),
    (child) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid!, "SIGTERM")
          } catch {
            // already gone
          }
        }
      })
  ).pipe(Effect.flatMap((child) =>
    Effect.async<Run>((resume) => {
      let stdout = ""
      let stderr = ""
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
      child.on("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    })
  ))

const expectEveryStepPassed = (run: Run) => {
  const lines = run.stdout.split("\n")
  const failed = lines.filter((line) => line.startsWith("✗"))
  expect(failed, `${run.stdout}\n${run.stderr.slice(-2000)}`).toEqual([])
  for (const title of STEP_TITLES) {
    expect(lines.some((line) => line === `✓ ${title}` || line.startsWith(`✓ ${title} — `)), `step: ${title}`).toBe(true)
  }
  expect(lines.filter((line) => line.startsWith("✓"))).toHaveLength(STEP_TITLES.length)
  expect(run.stdout).toMatch(new RegExp(`^demo passed: all ${STEP_TITLES.length} steps in \\d+\\.\\d s$`, "m"))
  expect(run.code).toBe(0)
}

/** Nothing printed may name an id, a one-time code, a key or an address. */
const expectNothingIdentifying = (run: Run) => {
  const output = run.stdout + run.stderr
  expect(output).not.toMatch(/\b[hcdmk]_[0-9A-Za-z_-]{22}\b/)
  expect(output).not.toMatch(/\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b/)
  expect(output).not.toMatch(/\b\d{1,3}(\.\d{1,3}){3}\b|wss?:\/\/|postgres(ql)?:\/\//)
  expect(output).not.toMatch(/[A-Za-z0-9+/_-]{32,}/)
}

describe("npm run demo", () => {
  it.scoped("drives the whole story on the embedded database and exits 0", () =>
    Effect.gen(function*() {
      const run = yield* demo({})
      expectEveryStepPassed(run)
      expectNothingIdentifying(run)
      expect(run.stdout).toContain(`✓ ${STEPS.serverStarted} — embedded database in a fresh data directory`)
      expect(run.stdout).toContain(`"${PROFILE.name}"`)
    }), TIMEOUT)

  it.scoped("drives the whole story on the Postgres database from DATABASE_URL and exits 0", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const run = yield* demo({ DATABASE_URL: url })
      expectEveryStepPassed(run)
      expectNothingIdentifying(run)
      expect(run.stdout).toContain(`✓ ${STEPS.serverStarted} — Postgres database from DATABASE_URL`)
      expect(run.stdout).toMatch(new RegExp(`✓ ${STEPS.storageHasNoProfile} — \\d+ tables, \\d+ rows`))
    }), TIMEOUT)
})
