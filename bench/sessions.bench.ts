// Idle authenticated sessions against the real server: what one costs in server memory, how fast the server signs
// devices in, and the round-trip latency of an authenticated RPC while 10,000 sessions are open.
//
// The server is `npx tsx src/server/main.ts` as a child process (PORT=0, a fresh Postgres database created here and
// dropped afterwards, a random TESSERA_MASTER_KEY, TESSERA_MEDIA_WORKERS=1). One host is enrolled through
// AccountsLive before the server starts, one host device through the SDK once it listens. All sessions are that one
// device on separate connections. Clients are child processes (bench/sessions-client.ts): a lean one speaking the
// @effect/rpc msgpack wire format over raw `ws` sockets for the many sessions (as bench/rpc.bench.ts's load client),
// and the stock SDK client (signIn, RpcClient) for latency.
//
//   session_memory_kib       (server VmRSS at 10,000 idle sessions − VmRSS at 100) / 9,900. Each VmRSS is the median
//                            of the last samples (1/s) once they stop moving, read from /proc/<server pid>/status; the
//                            server is never asked to collect garbage for this figure.
//   session_heap_kib         the same difference of V8 heapUsed, taken after two forced full GCs, plus
//                            session_rss_after_gc_kib: VmRSS after them. The GC comes from a preload this bench
//                            writes to its temp directory and passes in NODE_OPTIONS (`--require`); on SIGUSR2 it
//                            runs gc() and writes process.memoryUsage() to a file. Nothing is added to the server.
//   authentications_per_s    9,900 already-open connections signed in by parallel clients: session.challenge →
//                            RSA-PSS-4096 signature → session.authenticate, wall clock. The clients' signing shares
//                            this machine's cores with the server, so this is a floor; server_cpu_ms_per_authentication
//                            (server utime+stime over the phase / authentications) gives
//                            authentications_per_server_cpu_s, the server's own rate per core.
//   rpc_latency_ms_p50/p99   5,000 sequential presence.set calls (authenticated, through the Authenticated
//                            middleware) from one SDK client after 500 warm-up calls, with the 10,000 sessions open.
//
//   npx tsx bench/sessions.bench.ts      prints one JSON object, writes bench/results/sessions.json
//
// To see where the memory goes: TESSERA_BENCH_HEAP_SNAPSHOTS=<dir> makes the server write a heap snapshot at the
// baseline (server-1) and at full load (server-2), after the forced GCs (the RSS figures of such a run are void:
// writing a snapshot grows the process); TESSERA_BENCH_SESSIONS=<n> runs with fewer sessions for that (the figures
// are defined at 10,000).
//
// Needs an open-files limit above 11,000 (the server holds every socket); below that it runs itself again under
// `ulimit -n 65536` if it may, and otherwise fails saying so.
import * as Effect from "effect/Effect"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type ChildProcess, fork, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Enrollment } from "../src/actors/Enrollment.js"
import { toBase64Url } from "../src/crypto/bytes.js"
import { exportIdentityPrivateKey } from "../src/crypto/identity.js"
import { encodeConfig, enrollHostDevice, memoryKeyStore, NodeWebSocket } from "../src/sdk/node.js"
import { AccountsLive } from "../src/server/Accounts.js"
import { readServerSettings } from "../src/server/Config.js"
import { testDatabaseUrl } from "../test/support/database.js"
import type { ClientCommand, ClientReply, Credentials } from "./sessions-client.js"
import { publishFigures } from "./results.js"

const settings = {
  sessions: Number(process.env["TESSERA_BENCH_SESSIONS"] ?? 10_000),
  baselineSessions: 100,
  clientProcesses: 2,
  connectConcurrency: 64,
  /** Sign-ins in flight per client process: enough to keep its signing threads and the server busy. */
  authConcurrency: 16,
  subscribeConcurrency: 64,
  latencyWarmup: 500,
  latencySamples: 5_000,
  settle: { minSeconds: 8, maxSeconds: 40, window: 6, tolerance: 0.005 }
}

const self = fileURLToPath(import.meta.url)
const benchDir = dirname(self)
const repoRoot = dirname(benchDir)
const log = (line: string) => process.stderr.write(`[sessions] ${line}\n`)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const round = (value: number, digits: number) => Number(value.toFixed(digits))

// ---------------------------------------------------------------------------------------------------------------
// Limits

const FD_NEEDED = settings.sessions + 1_000

/** The soft open-files limit as processes started from here get it (Node raises its own soft limit to the hard one). */
const fdLimit = (): number => {
  const out = spawnSync("bash", ["-c", "ulimit -Sn"], { encoding: "utf8" }).stdout.trim()
  return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out)
}

/**
 * With too low a limit, runs this bench again under `ulimit -n 65536` (which takes the privilege to raise the hard
 * limit) and returns false; fails with what to do when that is not possible.
 */
const ensureFdLimit = (): boolean => {
  const limit = fdLimit()
  if (limit >= FD_NEEDED) return true
  const advice = `the sessions bench needs an open-files limit of at least ${FD_NEEDED} (it is ${limit}): ` +
    `raise it (ulimit -n 65536, or the hard limit in /etc/security/limits.conf) and run it again`
  if (process.env["TESSERA_BENCH_ULIMIT_RAISED"] === "1") throw new Error(advice)
  log(`open-files limit ${limit} is too low: running again under ulimit -n 65536`)
  const result = spawnSync("bash", ["-c", `ulimit -n 65536 2>/dev/null || exit 97; exec npx tsx "$0"`, self], {
    cwd: repoRoot,
    stdio: "inherit",
    env: { ...process.env, TESSERA_BENCH_ULIMIT_RAISED: "1" }
  })
  if (result.status === 97) throw new Error(advice)
  process.exitCode = result.status ?? 1
  return false
}

const ensurePortRange = () => {
  const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number)
  if (high! - low! < settings.sessions + 1_000) {
    throw new Error(`ephemeral port range ${low}-${high} is too small for ${settings.sessions} connections`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The server process

/** Written to the temp directory and preloaded into the server: forced GC + memoryUsage on SIGUSR2. */
const PROBE_SOURCE = `
const file = process.env.TESSERA_BENCH_PROBE_FILE
if (file && /src[\\\\/]server[\\\\/]main\\.ts$/.test(process.argv[1] || "")) {
  const fs = require("node:fs")
  require("node:v8").setFlagsFromString("--expose-gc")
  const gc = require("node:vm").runInNewContext("gc")
  let n = 0
  const snapshots = process.env.TESSERA_BENCH_HEAP_SNAPSHOTS
  process.on("SIGUSR2", () => {
    gc(); gc()
    const out = file + "." + ++n
    if (snapshots) require("node:v8").writeHeapSnapshot(require("node:path").join(snapshots, "server-" + n + ".heapsnapshot"))
    fs.writeFileSync(out + ".tmp", JSON.stringify(process.memoryUsage()))
    fs.renameSync(out + ".tmp", out)
  })
  fs.writeFileSync(file + ".pid", String(process.pid))
}
`

interface Server {
  readonly url: string
  readonly httpBase: string
  /** The node process running main.ts (npx and tsx's launcher are its ancestors). */
  readonly pid: number
  readonly probe: (() => Promise<NodeJS.MemoryUsage>) | undefined
  readonly stop: () => Promise<void>
}

const children = (): Map<number, Array<number>> => {
  const byParent = new Map<number, Array<number>>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(entry)])
    } catch {
      // gone meanwhile
    }
  }
  return byParent
}

/** The deepest descendant of `root` (or root) whose command line runs src/server/main.ts. */
const serverProcessOf = (root: number): number | undefined => {
  const byParent = children()
  const runsMain = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").some((arg) => /src\/server\/main\.ts$/.test(arg))
    } catch {
      return false
    }
  }
  let found: number | undefined
  const walk = (pid: number) => {
    if (runsMain(pid)) found = pid
    for (const child of byParent.get(pid) ?? []) walk(child)
  }
  walk(root)
  return found
}

const startServer = async (env: NodeJS.ProcessEnv, workDir: string): Promise<Server> => {
  const probeFile = join(workDir, "probe")
  const probePath = join(workDir, "probe.cjs")
  writeFileSync(probePath, PROBE_SOURCE)
  const nodeOptions = [process.env["NODE_OPTIONS"], `--require ${probePath}`].filter(Boolean).join(" ")
  const child = spawn("npx", ["tsx", "src/server/main.ts"], {
    cwd: repoRoot,
    env: { ...env, NODE_OPTIONS: nodeOptions, TESSERA_BENCH_PROBE_FILE: probeFile },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that stopping it reaches tsx's node process and the media worker too.
    detached: true
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) if (line.trim() !== "") log(`server: ${line}`)
  })
  let serverPid: number | undefined
  const groupAlive = () => {
    try {
      process.kill(-child.pid!, 0)
      return true
    } catch {
      return false
    }
  }
  const waitGone = async (ms: number) => {
    for (let waited = 0; waited < ms && groupAlive(); waited += 100) await sleep(100)
    return !groupAlive()
  }
  /** SIGTERM to the server (a graceful shutdown; tsx and npx follow it), SIGKILL to what is left after 15 s. */
  const stop = async () => {
    if (!groupAlive()) return
    try {
      process.kill(serverPid ?? -child.pid!, "SIGTERM")
    } catch {
      // gone meanwhile
    }
    if (await waitGone(15_000)) return
    log("server did not stop within 15 s of SIGTERM: killing its process group")
    try {
      process.kill(-child.pid!, "SIGKILL")
    } catch {
      // gone meanwhile
    }
    await waitGone(5_000)
  }
  const listening = new Promise<string>((resolve, reject) => {
    let stdout = ""
    const timer = setTimeout(() => reject(new Error("server did not report listening within 90 s")), 90_000)
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      const match = /tessera listening on (ws:\/\/\S+\/rpc)/.exec(stdout)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening`))
    })
  })
  let url: string
  try {
    url = await listening
  } catch (error) {
    await stop()
    throw error
  }
  const pid = serverProcessOf(child.pid!)
  serverPid = pid
  if (pid === undefined) {
    await stop()
    throw new Error("cannot find the server's node process under npx")
  }
  let probePid: number | undefined
  try {
    probePid = Number(readFileSync(`${probeFile}.pid`, "utf8"))
  } catch {
    log("heap probe did not load in the server: heap figures left out")
  }
  let probes = 0
  const probe = probePid === pid
    ? async () => {
      const out = `${probeFile}.${++probes}`
      process.kill(pid, "SIGUSR2")
      // A heap snapshot (TESSERA_BENCH_HEAP_SNAPSHOTS) can take a while.
      for (let i = 0; i < 2_400; i++) {
        await sleep(50)
        try {
          return JSON.parse(readFileSync(out, "utf8")) as NodeJS.MemoryUsage
        } catch {
          // not yet written
        }
      }
      throw new Error("heap probe did not answer")
    }
    : undefined
  return { url, httpBase: `http://${new URL(url).host}`, pid, probe, stop }
}

const rssKib = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (!match) throw new Error("no VmRSS for the server process")
  return Number(match[1])
}

/** utime + stime of the process (all its threads), in milliseconds. */
const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10 // clock ticks of 10 ms (CLK_TCK 100)
}

/** Samples VmRSS once a second until the last `window` samples agree within `tolerance`; their median. */
const settledRss = async (pid: number) => {
  const { minSeconds, maxSeconds, window, tolerance } = settings.settle
  const samples: Array<number> = []
  for (let second = 1; second <= maxSeconds; second++) {
    await sleep(1_000)
    samples.push(rssKib(pid))
    if (second < minSeconds || samples.length < window) continue
    const last = samples.slice(-window)
    const spread = (Math.max(...last) - Math.min(...last)) / Math.min(...last)
    if (spread <= tolerance) break
  }
  const last = [...samples.slice(-window)].sort((a, b) => a - b)
  log(`VmRSS samples (KiB): ${samples.join(" ")}`)
  return last[Math.floor(last.length / 2)]!
}

const metrics = async (server: Server) => {
  const text = await (await fetch(`${server.httpBase}/metrics`)).text()
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN)
  return { connections: value("tessera_connections"), authenticated: value("tessera_sessions_authenticated") }
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

const clientScript = join(benchDir, "sessions-client.ts")

const nextReply = (child: ChildProcess) =>
  new Promise<ClientReply>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`bench client exited with ${code}`))
    child.once("exit", onExit)
    child.once("message", (message) => {
      child.off("exit", onExit)
      const reply = message as ClientReply
      if (reply._tag === "failed") reject(new Error(`bench client failed: ${reply.error}`))
      else resolve(reply)
    })
  })

const forkClient = (args: ReadonlyArray<string>, credentials: Credentials) => {
  const child = fork(clientScript, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  child.send({ _tag: "init", credentials } satisfies ClientCommand)
  return child
}

/** Sends one command to every client and waits for all their answers; fails if any session failed. */
const phase = async (clients: ReadonlyArray<ChildProcess>, command: (index: number) => ClientCommand) => {
  const replies = clients.map(nextReply)
  clients.forEach((child, index) => child.send(command(index)))
  let ok = 0
  const stepsMs: Record<string, number> = {}
  for (const reply of await Promise.all(replies)) {
    if (reply._tag !== "phaseDone") throw new Error(`unexpected reply ${reply._tag}`)
    if (reply.failed > 0) throw new Error(`${reply.failed} sessions failed in ${reply.phase}: ${reply.error}`)
    ok += reply.ok
    for (const [step, ms] of Object.entries(reply.stepsMs)) stepsMs[step] = (stepsMs[step] ?? 0) + ms
  }
  log(`  ${Object.entries(stepsMs).map(([step, ms]) => `${step} ${(ms / ok).toFixed(1)} ms`).join(", ")} (mean per session)`)
  return ok
}

/** `total` more sessions spread over the clients: connect, authenticate, subscribe. Timings of each step. */
const addSessions = async (clients: ReadonlyArray<ChildProcess>, total: number, server: Server) => {
  const share = (index: number) =>
    Math.floor(total / clients.length) + (index < total % clients.length ? 1 : 0)
  const timed = async (run: () => Promise<number>) => {
    const cpu = cpuMs(server.pid)
    const start = performance.now()
    const count = await run()
    return { count, seconds: (performance.now() - start) / 1000, serverCpuMs: cpuMs(server.pid) - cpu }
  }
  const connect = await timed(() =>
    phase(clients, (i) => ({ _tag: "connect", count: share(i), concurrency: settings.connectConcurrency }))
  )
  const authenticate = await timed(() =>
    phase(clients, () => ({ _tag: "authenticate", concurrency: settings.authConcurrency }))
  )
  const subscribe = await timed(() =>
    phase(clients, () => ({ _tag: "subscribe", concurrency: settings.subscribeConcurrency }))
  )
  for (const [name, step] of Object.entries({ connect, authenticate, subscribe })) {
    if (step.count !== total) throw new Error(`${name}: ${step.count} of ${total} sessions`)
    log(`  ${name}: ${step.count} in ${step.seconds.toFixed(1)} s, server CPU ${(step.serverCpuMs / step.count).toFixed(2)} ms each`)
  }
  return { connect, authenticate, subscribe }
}

const measureLatency = async (credentials: Credentials) => {
  const child = forkClient(["latency", String(settings.latencyWarmup), String(settings.latencySamples)], credentials)
  const reply = await nextReply(child)
  if (reply._tag !== "latency") throw new Error("unexpected reply from the latency client")
  const sorted = [...reply.samplesMs].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50: at(0.5), p99: at(0.99) }
}

// ---------------------------------------------------------------------------------------------------------------

const run = async (databaseUrl: string, workDir: string, cleanups: Array<() => Promise<void>>) => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: databaseUrl,
    TESSERA_MASTER_KEY: randomBytes(32).toString("base64"),
    TESSERA_MEDIA_WORKERS: "1",
    TESSERA_DATA_DIR: join(workDir, "data"),
    // The ramp opens every connection before it signs any in: more than the default bound of pending ones, and
    // on a slow machine for longer than the default deadline.
    TESSERA_MAX_PENDING_CONNECTIONS: String(settings.sessions + 1_000),
    TESSERA_AUTH_DEADLINE_SECONDS: "0"
  }

  // One host, enrolled through the accounts layer with the server's own configuration, before the server starts.
  const provider = ConfigProvider.fromMap(
    new Map(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined))
  )
  const { code } = await Effect.runPromise(
    Effect.flatMap(readServerSettings, (serverSettings) =>
      Effect.flatMap(Enrollment, (enrollment) => enrollment.enrollHost()).pipe(
        Effect.provide(AccountsLive(serverSettings))
      )).pipe(Effect.withConfigProvider(provider))
  )

  log("starting the server")
  const server = await startServer(env, workDir)
  cleanups.push(server.stop)
  log(`server pid ${server.pid} at ${server.url}`)

  const device = await Effect.runPromise(
    enrollHostDevice(server.url, code, memoryKeyStore(), { extractableKey: true }).pipe(Effect.provide(NodeWebSocket))
  )
  const credentials: Credentials = {
    url: server.url,
    config: encodeConfig(device.config),
    pkcs8: toBase64Url(await exportIdentityPrivateKey(device.keys)),
    spki: toBase64Url(device.keys.publicKeySpki)
  }

  const clients = Array.from({ length: settings.clientProcesses }, () => forkClient(["sessions"], credentials))
  cleanups.push(async () => {
    for (const child of clients) if (child.exitCode === null && child.connected) child.send({ _tag: "exit" } satisfies ClientCommand)
    await Promise.all(clients.map((child) =>
      child.exitCode !== null ? undefined : Promise.race([new Promise((resolve) => child.once("exit", resolve)), sleep(10_000)])
    ))
    for (const child of clients) if (child.exitCode === null) child.kill("SIGKILL")
  })
  for (const reply of await Promise.all(clients.map(nextReply))) {
    if (reply._tag !== "ready") throw new Error("bench client did not start")
  }

  log(`baseline: ${settings.baselineSessions} sessions`)
  await addSessions(clients, settings.baselineSessions, server)
  const baselineRss = await settledRss(server.pid)
  const baselineHeap = await server.probe?.()

  const added = settings.sessions - settings.baselineSessions
  log(`adding ${added} sessions`)
  const ramp = await addSessions(clients, added, server)
  log(
    `connect ${ramp.connect.seconds.toFixed(1)} s, authenticate ${ramp.authenticate.seconds.toFixed(1)} s, ` +
      `subscribe ${ramp.subscribe.seconds.toFixed(1)} s`
  )
  const counts = await metrics(server)
  if (counts.authenticated !== settings.sessions) {
    throw new Error(`server reports ${counts.authenticated} authenticated sessions, expected ${settings.sessions}`)
  }
  const fullRss = await settledRss(server.pid)
  const fullHeap = await server.probe?.()

  log("latency")
  const latency = await measureLatency(credentials)

  const perSession = (bytesOrKib: number, unit: "kib" | "bytes") =>
    round((unit === "kib" ? bytesOrKib : bytesOrKib / 1024) / added, 2)
  const auth = ramp.authenticate
  const figures: Record<string, number> = {
    session_memory_kib: perSession(fullRss - baselineRss, "kib"),
    ...(baselineHeap && fullHeap
      ? {
        session_heap_kib: perSession(fullHeap.heapUsed - baselineHeap.heapUsed, "bytes"),
        session_external_kib: perSession(fullHeap.external - baselineHeap.external, "bytes"),
        session_rss_after_gc_kib: perSession(fullHeap.rss - baselineHeap.rss, "bytes")
      }
      : {}),
    server_rss_mib_baseline: round(baselineRss / 1024, 1),
    server_rss_mib_at_sessions: round(fullRss / 1024, 1),
    ...(fullHeap ? { server_heap_used_mib_at_sessions: round(fullHeap.heapUsed / 2 ** 20, 1) } : {}),
    sessions: settings.sessions,
    rpc_latency_ms_p50: round(latency.p50, 3),
    rpc_latency_ms_p99: round(latency.p99, 3),
    authentications_per_s: Math.round(auth.count / auth.seconds),
    server_cpu_ms_per_authentication: round(auth.serverCpuMs / auth.count, 3),
    authentications_per_server_cpu_s: Math.round(auth.count / (auth.serverCpuMs / 1000)),
    connections_per_s: Math.round(ramp.connect.count / ramp.connect.seconds),
    subscribes_per_s: Math.round(ramp.subscribe.count / ramp.subscribe.seconds),
    bench_client_processes: settings.clientProcesses
  }
  return figures
}

const main = async () => {
  if (!(settings.sessions > settings.baselineSessions)) {
    throw new Error(`TESSERA_BENCH_SESSIONS must be more than ${settings.baselineSessions}`)
  }
  if (!ensureFdLimit()) return
  ensurePortRange()
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
  const workDir = mkdtempSync(join(tmpdir(), "tessera-sessions-bench-"))
  const scope = Effect.runSync(Scope.make())
  const cleanups: Array<() => Promise<void>> = []
  const cleanUp = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e) => log(`cleanup: ${e}`))
    cleanups.length = 0
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(workDir, { recursive: true, force: true })
  }
  const onSignal = () => {
    log("interrupted: cleaning up")
    void cleanUp().finally(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  try {
    const databaseUrl = await Effect.runPromise(Scope.extend(testDatabaseUrl, scope))
    log(`database ${new URL(databaseUrl).pathname.slice(1)} (dropped at the end)`)
    const figures = await run(databaseUrl, workDir, cleanups)
    await cleanUp()
    figures.bench_seconds = Math.round((performance.now() - started) / 1000)
    // Other work on the machine slows the clients' signing and the server alike: the rates are only as good as this.
    figures.load_avg_1m_at_start = round(loadAtStart, 2)
    figures.load_avg_1m_at_end = round(loadavg()[0]!, 2)
    publishFigures("sessions", figures)
  } catch (error) {
    await cleanUp()
    throw error
  }
}

main().then(() => process.exit(process.exitCode ?? 0), (error) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
