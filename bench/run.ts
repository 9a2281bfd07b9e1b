/**
 * `npm run bench`: runs every bench/*.bench.ts one after another, each in its own process (`npx tsx <file>`), so
 * that no bench measures on a heap or event loop another one left behind. Each bench prints one JSON object of
 * figures as its last stdout line and writes bench/results/<name>.json itself; this prints the combined object
 * { <name>: figures } on stdout and writes it to bench/results/all.json. A bench that fails appears there as
 * { "error": "..." } (also in its own results file, replacing figures of an earlier run) and makes this exit non-zero
 * after the others have run. Progress and the benches' own stderr go to stderr.
 */
import { spawn } from "node:child_process"
import { mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const benchDir = dirname(fileURLToPath(import.meta.url))
const resultsDir = join(benchDir, "results")
const SUFFIX = ".bench.ts"
const STDERR_TAIL_LINES = 200

type Figures = Record<string, unknown>
type Outcome = { readonly figures: Figures } | { readonly error: string }

/** The last stdout line that is a JSON object: a bench may print other lines before its result. */
const lastJsonObject = (stdout: string): Figures | undefined => {
  const lines = stdout.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("{"))
  for (const line of lines.reverse()) {
    try {
      const value: unknown = JSON.parse(line)
      if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Figures
    } catch {
      // not the result line
    }
  }
  return undefined
}

/** What a failed bench's stderr says went wrong: its first error line and, if different, its last (the root cause). */
const errorSummary = (stderrTail: ReadonlyArray<string>): string => {
  const lines = stderrTail.map((line) => line.trim()).filter((line) => line !== "" && !/^Node\.js v\d/.test(line))
  // "Error: ...", "SqlError: ...", "TypeError [ERR_X]: ...", "[cause]: Error: ...", "defect: SqlError: ..."
  const errors = lines.filter((line) => /^(\[?\w+\]?: )?\w*(Error|Exception)( \[\w+\])?: /.test(line))
  const first = errors.at(0)
  const last = errors.at(-1)
  if (first === undefined || last === undefined) return lines.at(-1) ?? ""
  return first === last ? first : `${first} ... ${last}`
}

const runBench = (file: string): Promise<Outcome> =>
  new Promise((resolve) => {
    const child = spawn("npx", ["tsx", file], { cwd: dirname(benchDir), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderrTail: Array<string> = []
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      process.stderr.write(chunk)
      stderrTail = [...stderrTail, ...chunk.split("\n")].slice(-STDERR_TAIL_LINES)
    })
    child.on("error", (error) => resolve({ error: `could not start: ${error.message}` }))
    child.on("close", (code, signal) => {
      const figures = lastJsonObject(stdout)
      if (code === 0 && figures !== undefined) return resolve({ figures })
      const how = code === 0 ? "exited 0 without printing a JSON object" : signal ? `killed by ${signal}` : `exit code ${code}`
      const detail = errorSummary(stderrTail)
      resolve({ error: detail === "" ? how : `${how}: ${detail}` })
    })
  })

const files = readdirSync(benchDir).filter((name) => name.endsWith(SUFFIX)).sort()
mkdirSync(resultsDir, { recursive: true })
const all: Record<string, unknown> = {}
let failed = 0
for (const file of files) {
  const name = basename(file, SUFFIX)
  process.stderr.write(`[bench] ${name}: npx tsx bench/${file}\n`)
  const started = performance.now()
  const outcome = await runBench(join(benchDir, file))
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  if ("figures" in outcome) {
    all[name] = outcome.figures
    process.stderr.write(`[bench] ${name}: done in ${seconds} s\n`)
  } else {
    all[name] = { error: outcome.error }
    // Replaces whatever figures an earlier run left there, so that no stale result passes for this run's.
    writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(all[name]) + "\n")
    failed++
    process.stderr.write(`[bench] ${name}: FAILED after ${seconds} s\n`)
  }
}

const json = JSON.stringify(all, null, 2)
writeFileSync(join(resultsDir, "all.json"), json + "\n")
process.stdout.write(json + "\n")
if (failed > 0) {
  process.stderr.write(`[bench] ${failed} of ${files.length} benches failed\n`)
  process.exitCode = 1
}
