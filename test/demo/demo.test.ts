/**
 * `npm run demo` as a user runs it: a child process (the coordinator, a server, the CLI and two client processes),
 * once on the embedded database and once with DATABASE_URL on a fresh Postgres database. It must exit 0, print
 * every step as passed, and print no code, id, key or address. When a step fails, or on Ctrl-C, it names the step,
 * exits non-zero and leaves no process and no temporary data behind.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { PROFILE, STEP_TITLES, STEPS } from "../../src/demo/steps.js"
import { POSTGRES_ADMIN_URL, testDatabaseUrl } from "../support/database.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** The demo starts five tsx processes, a database and RSA-4096 key generation: minutes on a loaded machine. */
const TIMEOUT = 600_000

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Whether anything of the run's process group was still alive once the demo had exited. */
  readonly leftProcesses: boolean
  /** Whatever the demo left in its temporary directory (TMPDIR), besides tsx's cache. */
  readonly leftFiles: ReadonlyArray<string>
}

const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls until the process group is empty; false if it still is not after `ms` (real time: tests run live). */
const groupEnds = (pgid: number, ms: number) =>
  Effect.gen(function*() {
    for (let waited = 0; waited < ms; waited += 100) {
      if (!groupAlive(pgid)) return true
      yield* Effect.sleep("100 millis")
    }
    return !groupAlive(pgid)
  })

interface DemoOptions {
  /** The tessera settings of the run; none is inherited. */
  readonly settings?: Readonly<Record<string, string>>
  /** `npm run demo` (default), or the coordinator directly under node (clean signal delivery). */
  readonly via?: "npm" | "node"
  /** Called with the output so far whenever it grows. */
  readonly onOutput?: (stdout: string, child: ChildProcess) => void
}

/**
 * Runs the demo in its own process group (so that a test timeout takes down everything it started) and with its own
 * TMPDIR (so that what it leaves there can be seen).
 */
const demo = (options: DemoOptions = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const scratch = mkdtempSync(join(tmpdir(), "tessera-demo-test-"))
      const env: Record<string, string | undefined> = { ...process.env }
      for (const name of Object.keys(env)) if (name === "DATABASE_URL" || name.startsWith("TESSERA_")) delete env[name]
      const [command, args] = options.via === "node"
        ? [process.execPath, ["--import", "tsx", "src/demo/main.ts"]]
        : ["npm", ["run", "--silent", "demo"]]
      const child = spawn(command, args, {
        cwd: ROOT,
        env: { ...env, ...options.settings, TMPDIR: scratch },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"]
      })
      return { child, scratch }
    }),
    ({ child, scratch }) =>
      Effect.sync(() => {
        if (groupAlive(child.pid!)) process.kill(-child.pid!, "SIGKILL")
        rmSync(scratch, { recursive: true, force: true })
      })
  ).pipe(Effect.flatMap(({ child, scratch }) =>
    Effect.gen(function*() {
      const exit = yield* Effect.async<{ stdout: string; stderr: string; code: number | null; signal: NodeJS.Signals | null }>(
        (resume) => {
          let stdout = ""
          let stderr = ""
          child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
            stdout += chunk
            options.onOutput?.(stdout, child)
          })
          child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
          child.on("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
        }
      )
      const ended = yield* groupEnds(child.pid!, 5_000)
      const leftFiles = readdirSync(scratch).filter((name) => !name.startsWith("tsx-"))
      return { ...exit, leftProcesses: !ended, leftFiles } satisfies Run
    })
  ))

const lines = (run: Run) => run.stdout.split("\n")

const expectEveryStepPassed = (run: Run) => {
  const failed = lines(run).filter((line) => line.startsWith("✗"))
  expect(failed, `${run.stdout}\n${run.stderr.slice(-2000)}`).toEqual([])
  for (const title of STEP_TITLES) {
    expect(lines(run).some((line) => line === `✓ ${title}` || line.startsWith(`✓ ${title} — `)), `step: ${title}`).toBe(true)
  }
  expect(lines(run).filter((line) => line.startsWith("✓"))).toHaveLength(STEP_TITLES.length)
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

const expectNothingLeft = (run: Run) => {
  expect(run.leftProcesses, "processes outlived the demo").toBe(false)
  expect(run.leftFiles, "the demo left temporary files").toEqual([])
}

describe("npm run demo", () => {
  it.scopedLive("drives the whole story on the embedded database and exits 0", () =>
    Effect.gen(function*() {
      const run = yield* demo()
      expectEveryStepPassed(run)
      expectNothingIdentifying(run)
      expectNothingLeft(run)
      expect(run.stdout).toContain(`✓ ${STEPS.serverStarted} — embedded database in a fresh data directory`)
      expect(run.stdout).toContain(`"${PROFILE.name}"`)
      expect(run.stdout).toMatch(new RegExp(`✓ ${STEPS.callSecured} — safety code \\d{5}( \\d{5}){4}$`, "m"))
    }), TIMEOUT)

  it.scopedLive("drives the whole story on the Postgres database from DATABASE_URL and exits 0", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      const run = yield* demo({ settings: { DATABASE_URL: url } })
      expectEveryStepPassed(run)
      expectNothingIdentifying(run)
      expectNothingLeft(run)
      expect(run.stdout).toContain(`✓ ${STEPS.serverStarted} — Postgres database from DATABASE_URL`)
      expect(run.stdout).toMatch(new RegExp(`✓ ${STEPS.storageHasNoProfile} — \\d+ tables, \\d+ rows`))
    }), TIMEOUT)

  it.scopedLive("names the failing step and exits 1 when a step fails (no database)", () =>
    Effect.gen(function*() {
      const missing = new URL(POSTGRES_ADMIN_URL)
      missing.pathname = `/tessera_missing_${randomBytes(6).toString("hex")}`
      const run = yield* demo({ settings: { DATABASE_URL: missing.toString() } })
      expect(run.code).toBe(1)
      expect(lines(run)).toContainEqual(expect.stringMatching(new RegExp(`^✗ ${escape(STEPS.operatorEnrollsHost)}: .+`)))
      expect(lines(run).filter((line) => line.startsWith("✓"))).toEqual([])
      expect(run.stdout).toContain(`demo failed at step 1 of ${STEP_TITLES.length}: ${STEPS.operatorEnrollsHost}`)
      expectNothingIdentifying(run)
      expectNothingLeft(run)
    }), TIMEOUT)

  it.scopedLive("ends every process it started on Ctrl-C and exits 130", () =>
    Effect.gen(function*() {
      let interrupted = false
      const run = yield* demo({
        via: "node",
        onOutput: (stdout, child) => {
          if (interrupted || !stdout.includes(`✓ ${STEPS.hostSignsIn}`)) return
          interrupted = true
          process.kill(-child.pid!, "SIGINT") // as the terminal does: the whole foreground group
        }
      })
      expect(interrupted).toBe(true)
      expect(run.code).toBe(130)
      expect(run.stdout).toMatch(/^✗ .+: interrupted \(SIGINT\)$/m)
      expect(run.stdout).toMatch(/^demo failed at step \d+ of \d+: /m)
      expect(run.stdout).not.toContain("demo passed")
      expectNothingLeft(run)
    }), TIMEOUT)
})

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
