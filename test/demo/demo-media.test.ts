/**
 * `npm run demo -- --media` as a user runs it: the coordinator starts the CLI, a server with its media relay and
 * headless Chromium (two pages, fake camera and microphone). It must exit 0, print every step as passed and one
 * line per call and side: peer to peer and through the relay both sides decode under SFrame 0x0006, the receiver
 * with the wrong key decodes nothing. It prints no code, id, key or address and leaves no process or file behind,
 * also when interrupted with Ctrl-C (exit 130).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { callSecuredTitle, MEDIA_CALLS, MEDIA_STEPS, RESULT_LINE } from "../../src/demo/media-steps.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** A server under tsx, RSA-4096 keys in two pages and three calls of real video on a loaded machine. */
const TIMEOUT = 600_000

const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Processes whose command line names `dir`: Chromium runs in a process group of its own, with its profile there. */
const processesUnder = (dir: string) =>
  readdirSync("/proc").filter((name) => /^\d+$/.test(name)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)
    } catch {
      return false
    }
  })

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly leftProcesses: boolean
  readonly leftFiles: ReadonlyArray<string>
}

/**
 * The demo in its own process group (a test timeout takes all of it down) and with its own TMPDIR; `onOutput` sees
 * the output so far whenever it grows. `via: "node"` runs the coordinator directly (clean signal delivery).
 */
const mediaDemo = (options: { readonly via?: "npm" | "node"; readonly onOutput?: (stdout: string, child: ChildProcess) => void } = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const scratch = mkdtempSync(join(tmpdir(), "tessera-media-demo-test-"))
      const env: Record<string, string | undefined> = { ...process.env }
      for (const name of Object.keys(env)) if (name === "DATABASE_URL" || name.startsWith("TESSERA_")) delete env[name]
      const [command, args] = options.via === "node"
        ? [process.execPath, ["--import", "tsx", "src/demo/main.ts", "--media"]]
        : ["npm", ["run", "--silent", "demo", "--", "--media"]]
      const child = spawn(command, args, { cwd: ROOT, env: { ...env, TMPDIR: scratch }, detached: true, stdio: ["ignore", "pipe", "pipe"] })
      return { child, scratch }
    }),
    ({ child, scratch }) =>
      Effect.sync(() => {
        if (groupAlive(child.pid!)) process.kill(-child.pid!, "SIGKILL")
        for (const pid of processesUnder(scratch)) process.kill(Number(pid), "SIGKILL")
        rmSync(scratch, { recursive: true, force: true })
      })
  ).pipe(Effect.flatMap(({ child, scratch }) =>
    Effect.gen(function*() {
      const exit = yield* Effect.async<{ stdout: string; stderr: string; code: number | null }>((resume) => {
        let stdout = ""
        let stderr = ""
        child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
          stdout += chunk
          options.onOutput?.(stdout, child)
        })
        child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
        child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
      })
      let ended = false
      for (let waited = 0; !ended && waited <= 5_000; waited += 100) {
        ended = !groupAlive(child.pid!) && processesUnder(scratch).length === 0
        if (!ended) yield* Effect.sleep("100 millis")
      }
      const leftFiles = readdirSync(scratch).filter((name) => !name.startsWith("tsx-"))
      return { ...exit, leftProcesses: !ended, leftFiles } satisfies Run
    })
  ))

const expectNothingLeft = (run: Run) => {
  expect(run.leftProcesses, "processes outlived the demo").toBe(false)
  expect(run.leftFiles, "the demo left temporary files").toEqual([])
}

describe("npm run demo -- --media", () => {
  it.scopedLive("calls peer to peer and through the relay in Chromium, SFrame on; the wrong key decodes nothing; exit 0", () =>
    Effect.gen(function*() {
      const run = yield* mediaDemo()
      const context = `${run.stdout}\n${run.stderr.slice(-2000)}`
      const lines = run.stdout.split("\n")
      expect(lines.filter((line) => line.startsWith("✗")), context).toEqual([])
      const titles = [...Object.values(MEDIA_STEPS), ...MEDIA_CALLS.map(callSecuredTitle)]
      for (const title of titles) {
        expect(lines.some((line) => line === `✓ ${title}` || line.startsWith(`✓ ${title} — `)), `step: ${title}\n${context}`).toBe(true)
      }

      const results = lines.flatMap((line) => {
        const m = RESULT_LINE.exec(line)
        return m ? [{ call: m[1], side: m[2], wrongKey: m[3] !== undefined, mode: m[4], suite: m[5], framesDecoded: Number(m[6]) }] : []
      })
      expect(results.map((r) => `${r.call}/${r.side}`)).toEqual(
        MEDIA_CALLS.flatMap((call) => [`${call.name}/host`, `${call.name}/customer`])
      )
      for (const r of results) {
        expect(r.suite).toBe("0x0006")
        expect(r.mode).toBe(r.call === "peer-to-peer" ? "p2p" : "relay")
        if (r.wrongKey) expect(r.framesDecoded).toBe(0)
        else expect(r.framesDecoded).toBeGreaterThan(0)
      }
      expect(results.filter((r) => r.wrongKey).map((r) => `${r.call}/${r.side}`)).toEqual(["wrong-key/customer"])
      expect(run.stdout).toMatch(/^media demo passed: .* \(\d+\.\d s\)$/m)
      expect(run.code).toBe(0)

      const output = run.stdout + run.stderr
      expect(output).not.toMatch(/\b[hcdmk]_[0-9A-Za-z_-]{22}\b/)
      expect(output).not.toMatch(/\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b/)
      expect(output).not.toMatch(/\b\d{1,3}(\.\d{1,3}){3}\b|wss?:\/\//)
      expect(output).not.toMatch(/[A-Za-z0-9+/_-]{32,}/)
      expect(output).not.toMatch(/a=fingerprint|a=ice-ufrag|candidate:/)
      expectNothingLeft(run)
    }), TIMEOUT)

  it.scopedLive("on Ctrl-C during a call it ends the server and Chromium, leaves nothing behind and exits 130", () =>
    Effect.gen(function*() {
      let interrupted = false
      const run = yield* mediaDemo({
        via: "node",
        onOutput: (stdout, child) => {
          if (interrupted || !stdout.includes(`✓ ${callSecuredTitle(MEDIA_CALLS[0])}`)) return
          interrupted = true
          process.kill(-child.pid!, "SIGINT") // as the terminal does: the whole foreground group
        }
      })
      expect(interrupted).toBe(true)
      expect(run.code, run.stdout).toBe(130)
      expect(run.stdout).toMatch(/^✗ .+: interrupted \(SIGINT\)$/m)
      expect(run.stdout).toMatch(/^media demo failed: /m)
      expect(run.stdout).not.toContain("media demo passed")
      expectNothingLeft(run)
    }), TIMEOUT)
})
