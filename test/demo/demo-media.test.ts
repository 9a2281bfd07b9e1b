/**
 * `npm run demo -- --media` as a user runs it: the coordinator starts the CLI, a server with its media relay and
 * headless Chromium (two pages, fake camera and microphone). It must exit 0, print every step as passed and one
 * line per call and side: peer to peer and through the relay both sides decode under SFrame 0x0006, the receiver
 * with the wrong key decodes nothing. It prints no code, id, key or address and leaves no process or file behind.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
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

/** The demo in its own process group (a test timeout takes all of it down) and with its own TMPDIR. */
const mediaDemo = Effect.acquireRelease(
  Effect.sync(() => {
    const scratch = mkdtempSync(join(tmpdir(), "tessera-media-demo-test-"))
    const env: Record<string, string | undefined> = { ...process.env }
    for (const name of Object.keys(env)) if (name === "DATABASE_URL" || name.startsWith("TESSERA_")) delete env[name]
    const child = spawn("npm", ["run", "--silent", "demo", "--", "--media"], {
      cwd: ROOT,
      env: { ...env, TMPDIR: scratch },
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
    const exit = yield* Effect.async<{ stdout: string; stderr: string; code: number | null }>((resume) => {
      let stdout = ""
      let stderr = ""
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
      child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    })
    let ended = !groupAlive(child.pid!)
    for (let waited = 0; !ended && waited < 5_000; waited += 100) {
      yield* Effect.sleep("100 millis")
      ended = !groupAlive(child.pid!)
    }
    const leftFiles = readdirSync(scratch).filter((name) => !name.startsWith("tsx-"))
    return { ...exit, leftProcesses: !ended, leftFiles }
  })
))

describe("npm run demo -- --media", () => {
  it.scopedLive("calls peer to peer and through the relay in Chromium, SFrame on; the wrong key decodes nothing; exit 0", () =>
    Effect.gen(function*() {
      const run = yield* mediaDemo
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
      expect(run.leftProcesses, "processes outlived the demo").toBe(false)
      expect(run.leftFiles, "the demo left temporary files").toEqual([])
    }), TIMEOUT)
})
