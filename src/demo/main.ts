/**
 * `npm run demo`: the whole story on a fresh server, step by step, with the host and the customer as SDK clients in
 * their own processes (host.ts, customer.ts) talking to the server over real WebSockets, and the operator using the
 * CLI. Each step prints one line, "✓ step" or "✗ step: why", and has its own timeout; the exit code is 0 only when
 * every step behaved as expected. Nothing printed names a code, key, id or address.
 *
 * Storage: without DATABASE_URL an embedded database in a fresh temporary data directory (removed at the end); with
 * DATABASE_URL that database, and TESSERA_MASTER_KEY (or TESSERA_MASTER_KEY_FILE) from the environment or, when
 * neither is set, a fresh key for this run, given to every process.
 *
 * Every process started here is ended before the coordinator exits, on success, failure, timeout or Ctrl-C; the
 * server and the clients also end by themselves when the coordinator dies (their IPC channel closes).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Redacted } from "effect"
import { type ChildProcess, fork, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { CustomerCommands } from "./customer.js"
import type { HostCommands } from "./host.js"
import { type Client, clientOf, type Commands, READY, runToPromise } from "./ipc.js"
import { PROFILE, STEP_TITLES, STEPS } from "./steps.js"
import { check, makeStepRunner, redact, StepFailed } from "./runner.js"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
/** tsx's loader by its absolute URL: the processes run in other directories than the repository. */
const TSX = ["--import", import.meta.resolve("tsx")]
/**
 * Timeouts per step, in seconds, generous for a loaded machine: starting a process that loads tsx and a database
 * takes longest, then making a device's RSA-4096 identity key; everything else is a few round trips.
 */
const PROCESS_START_S = 180
const CLI_S = 180
const KEYGEN_S = 120
const STEP_S = 60

// ---------------------------------------------------------------------------------------------------------------
// Processes: every one started is tracked, and ended on the way out.

const processes = new Set<ChildProcess>()

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  running(child)
    ? new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
    : Promise.resolve({ code: child.exitCode, signal: child.signalCode })

const track = (child: ChildProcess): ChildProcess => {
  processes.add(child)
  child.once("exit", () => processes.delete(child))
  return child
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
const stop = async (child: ChildProcess, graceMs: number): Promise<void> => {
  if (!running(child)) return
  child.kill("SIGTERM")
  const timer = setTimeout(() => running(child) && child.kill("SIGKILL"), graceMs)
  await exited(child)
  clearTimeout(timer)
}

const stopAll = () => Promise.all([...processes].map((child) => stop(child, 10_000)))

// Last resort when the coordinator exits some other way: no process outlives it.
process.on("exit", () => {
  for (const child of processes) if (running(child)) child.kill("SIGKILL")
})

/** The last lines a process wrote to stderr, for a failure reason. */
const stderrTail = (child: ChildProcess) => {
  let tail = ""
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-4000)
  })
  return () => {
    const lines = tail.split("\n").map((line) => line.trim()).filter((line) => line !== "")
    return lines.slice(-3).join(" / ")
  }
}

// Unexpected events (a process dying, Ctrl-C) fail the step under way at once.
const { step, interrupt, stepsDone } = makeStepRunner()

// ---------------------------------------------------------------------------------------------------------------
// The environment of the server and the CLI, and the storage it names.

interface Storage {
  readonly kind: "embedded" | "postgres"
  readonly env: Readonly<Record<string, string>>
  readonly dataDir: string
  readonly databaseUrl?: string
}

/** The inherited environment without any tessera setting, so that only the demo's own apply. */
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name === "DATABASE_URL" || name === "HOST" || name === "PORT") continue
    if (name.startsWith("TESSERA_") || name.startsWith("TLS_")) continue
    env[name] = value
  }
  return env
}

const storageFor = (workDir: string): Storage => {
  const dataDir = join(workDir, "data")
  const databaseUrl = process.env["DATABASE_URL"]
  if (databaseUrl === undefined || databaseUrl === "") return { kind: "embedded", dataDir, env: { TESSERA_DATA_DIR: dataDir } }
  const key: Record<string, string> = {}
  if (process.env["TESSERA_MASTER_KEY"]) key["TESSERA_MASTER_KEY"] = process.env["TESSERA_MASTER_KEY"]
  else if (process.env["TESSERA_MASTER_KEY_FILE"]) key["TESSERA_MASTER_KEY_FILE"] = process.env["TESSERA_MASTER_KEY_FILE"]
  else key["TESSERA_MASTER_KEY"] = randomBytes(32).toString("base64")
  return { kind: "postgres", dataDir, databaseUrl, env: { DATABASE_URL: databaseUrl, TESSERA_DATA_DIR: dataDir, ...key } }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

// ---------------------------------------------------------------------------------------------------------------
// The operator CLI, the server and the clients as processes.

interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const tessera = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, cwd: string): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [join(ROOT, "bin", "tessera.mjs"), ...args], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    }))
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

const cliFailure = (run: CliRun) => {
  const line = run.stderr.trim().split("\n").filter((l) => l.trim() !== "").at(-1) ?? "no message"
  return new Error(`exit code ${run.code}: ${line}`)
}

interface Server {
  readonly child: ChildProcess
  readonly stderr: () => string
}

const startServer = (env: Readonly<Record<string, string>>, cwd: string): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = track(fork(join(ROOT, "src", "demo", "server.ts"), [], {
      cwd,
      env,
      execArgv: TSX,
      stdio: ["ignore", "pipe", "pipe", "ipc"]
    }))
    const stderr = stderrTail(child)
    let stdout = ""
    let started = false
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      if (!started && /^tessera listening on /m.test(stdout)) {
        started = true
        resolve({ child, stderr })
      }
    })
    child.once("error", reject)
    child.once("exit", (code, signal) => {
      const why = `the server exited (${signal ?? `exit code ${code}`})${stderr() === "" ? "" : `: ${stderr()}`}`
      if (!started) reject(new Error(why))
      else if (!stopping.has(child)) interrupt(new Error(why))
    })
  })

/** Processes being stopped on purpose: their exit is no failure. */
const stopping = new Set<ChildProcess>()

interface ClientProcess<C extends Commands> extends Client<C> {
  readonly child: ChildProcess
}

const startClient = <C extends Commands>(name: "host" | "customer", cwd: string): Promise<ClientProcess<C>> =>
  new Promise((resolve, reject) => {
    const child = track(fork(join(ROOT, "src", "demo", `${name}.ts`), [], {
      cwd,
      env: baseEnv(),
      execArgv: TSX,
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    }))
    const stderr = stderrTail(child)
    let ready = false
    child.on("message", (message) => {
      if (message === READY && !ready) {
        ready = true
        resolve({ child, ...clientOf<C>(child, name) })
      }
    })
    child.once("error", reject)
    child.once("exit", (code, signal) => {
      const why = `the ${name} process exited (${signal ?? `exit code ${code}`})${stderr() === "" ? "" : `: ${stderr()}`}`
      if (!ready) reject(new Error(why))
      else if (!stopping.has(child)) interrupt(new Error(why))
    })
  })

/** Asks a client to close its connections and end; resolves with its exit code. */
const endClient = async (client: ClientProcess<Commands>) => {
  stopping.add(client.child)
  client.child.send({ id: -1, command: "exit", args: null })
  const { code, signal } = await exited(client.child)
  check(code === 0, `a client process ended with ${signal ?? `exit code ${code}`}`)
}

// ---------------------------------------------------------------------------------------------------------------
// Looking for the profile's plaintext in what the server stored.

const needles = [PROFILE.name, PROFILE.customerNumber].map((text) => Buffer.from(text, "utf8"))

const filesUnder = async (dir: string): Promise<Array<string>> => {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name))
}

const scanDataDir = async (dir: string) => {
  const files = await filesUnder(dir)
  let bytes = 0
  for (const file of files) {
    const content = await readFile(file)
    bytes += content.length
    check(!needles.some((needle) => content.includes(needle)), "a stored file shows the profile's plaintext")
  }
  return `${files.length} files, ${Math.round(bytes / 1024 / 1024)} MiB of the data directory scanned`
}

const quoteIdent = (name: string) => `"${name.replaceAll("\"", "\"\"")}"`

/** Every row of every table as Postgres prints it (bytea as hex), searched for the plaintext in both forms. */
const scanDatabase = (url: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const tables = yield* sql<{ schema: string; name: string }>`
      SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`
    const hexNeedles = needles.map((needle) => needle.toString("hex"))
    let rows = 0
    for (const table of tables) {
      const dump = yield* sql.unsafe<{ row: string }>(`SELECT t::text AS row FROM ${quoteIdent(table.schema)}.${quoteIdent(table.name)} t`)
      for (const { row } of dump) {
        rows++
        const lower = row.toLowerCase()
        if (needles.some((needle) => row.includes(needle.toString("utf8"))) || hexNeedles.some((hex) => lower.includes(hex))) {
          return yield* Effect.fail(new Error(`a row of ${table.name} shows the profile's plaintext`))
        }
      }
    }
    return `${tables.length} tables, ${rows} rows of the database scanned`
  }).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }).pipe(Layer.provide(Reactivity.layer))),
    Effect.scoped,
    runToPromise
  )

// ---------------------------------------------------------------------------------------------------------------
// The story

const formatDuration = (seconds: number) =>
  seconds % 86400 === 0 ? `${seconds / 86400} days` : seconds % 3600 === 0 ? `${seconds / 3600} hours` : `${seconds} s`

const story = async (workDir: string, storage: Storage) => {
  const port = await freePort()
  const serverEnv = { ...baseEnv(), ...storage.env, HOST: "127.0.0.1", PORT: String(port), TESSERA_MEDIA_WORKERS: "1" }
  const url = `ws://127.0.0.1:${port}/rpc`

  // The client processes load while the operator works; the step below waits for them.
  const clients = Promise.all([
    startClient<HostCommands>("host", workDir),
    startClient<CustomerCommands>("customer", workDir)
  ])
  clients.catch(() => {})

  const enrollmentCode = await step(STEPS.operatorEnrollsHost, CLI_S, async () => {
    const run = await tessera(["host", "enroll"], serverEnv, workDir)
    if (run.code !== 0) throw cliFailure(run)
    const code = /^code:\s+(\S+)\s*$/m.exec(run.stdout)?.[1]
    check(code !== undefined, "no enrollment code in its output")
    return code!
  })

  const server = await step(STEPS.serverStarted, PROCESS_START_S, () => startServer(serverEnv, ROOT), () =>
    storage.kind === "embedded" ? "embedded database in a fresh data directory" : "Postgres database from DATABASE_URL")

  const [host, customer] = await step(STEPS.clientsStarted, PROCESS_START_S, () => clients)

  await step(STEPS.hostEnrollsDevice, KEYGEN_S, async () => {
    const enrolled = await host.call("enroll", { url, code: enrollmentCode, storePath: join(workDir, "host", "keys.json") })
    check(enrolled.kind === "host", `the config is a ${enrolled.kind}'s`)
    check(enrolled.mode === 0o600, `the key store file has mode ${enrolled.mode.toString(8)}`)
  }, () => "file mode 0600")

  await step(STEPS.hostSignsIn, STEP_S, async () => {
    const { kind } = await host.call("signIn", undefined)
    check(kind === "host", `signed in as ${kind}`)
  })

  await step(STEPS.hostCreatesCustomer, STEP_S, async () => {
    const created = await host.call("createCustomer", PROFILE)
    check(created.status === "created", `status ${created.status}`)
    return created
  }, (created) => `profile sealed on the host; the server got and keeps only ${created.sealedBytes} bytes of ciphertext`)

  const activationCode = await step(STEPS.hostIssuesCode, STEP_S, async () => {
    const issued = await host.call("issueCode", undefined)
    check(issued.code.length > 0, "an empty code")
    return issued
  }, (issued) => `valid for ${formatDuration(Math.round(issued.validForSeconds / 60) * 60)}`)

  await step(STEPS.customerActivates, KEYGEN_S, async () => {
    const activated = await customer.call("activate", {
      url,
      code: activationCode.code,
      storePath: join(workDir, "customer", "keys.json")
    })
    check(activated.kind === "customer", `the config is a ${activated.kind}'s`)
    check(activated.mode === 0o600, `the key store file has mode ${activated.mode.toString(8)}`)
  }, () => "file mode 0600")

  await step(STEPS.hostToldOfActivation, STEP_S, async () => {
    const { status } = await host.call("awaitActivation", undefined)
    check(status === "active", `the host's list says ${status}`)
  })

  await step(STEPS.customerSignsIn, STEP_S, async () => {
    const { kind } = await customer.call("signIn", undefined)
    check(kind === "customer", `signed in as ${kind}`)
  })

  await step(STEPS.presence, STEP_S, async () => {
    await Promise.all([host.call("goOnline", undefined), customer.call("goOnline", undefined)])
    const [hostSees] = await Promise.all([
      host.call("awaitCustomerOnline", undefined),
      customer.call("awaitHostOnline", undefined)
    ])
    check(hostSees.listedOnline, "the host's customer list does not show the customer online")
  })

  await step(STEPS.hostCalls, STEP_S, async () => {
    const { callId } = await host.call("call", undefined)
    await customer.call("awaitRing", { callId })
  })

  await step(STEPS.customerAccepts, STEP_S, async () => {
    await Promise.all([customer.call("accept", undefined), host.call("awaitAccepted", undefined)])
  })

  await step(STEPS.callSecured, KEYGEN_S, async () => {
    const [caller, callee] = await Promise.all([host.call("secureCall", undefined), customer.call("secureCall", undefined)])
    check(/^\d{5}( \d{5}){4}$/.test(caller.safetyCode), "the host's safety code is not 25 digits in five groups")
    check(caller.safetyCode === callee.safetyCode, "the two sides see different safety codes")
    return caller.safetyCode
  }, (safetyCode) => `safety code ${safetyCode}`)

  await step(STEPS.signalling, STEP_S, async () => {
    const sameMessages = (sent: ReadonlyArray<unknown>, received: ReadonlyArray<unknown>) =>
      JSON.stringify(sent) === JSON.stringify(received)
    const [offer, offered] = await Promise.all([host.call("sendOffer", undefined), customer.call("receiveOffer", 3)])
    check(sameMessages(offer, offered.messages), "the customer opened other messages than the host sent")
    check(!offered.plaintext, "a payload relayed to the customer shows the offer's text")
    const [answer, answered] = await Promise.all([customer.call("sendAnswer", undefined), host.call("receiveAnswer", 3)])
    check(sameMessages(answer, answered.messages), "the host opened other messages than the customer sent")
    check(!answered.plaintext, "a payload relayed to the host shows the answer's text")
    return offered.relayed + answered.relayed
  }, (relayed) =>
    `SDP offer and answer and ICE candidates, 3 messages each way; the ${relayed} payloads the server relayed showed none of them`)

  await step(STEPS.hangUp, STEP_S, async () => {
    const [hungUp, ended] = await Promise.all([host.call("hangUp", undefined), customer.call("awaitCallEnded", undefined)])
    check(ended.reason === "hung-up", `the call ended as ${ended.reason}`)
    check(hungUp.keysDestroyed, "the host still holds the call's keys")
    check(ended.keysDestroyed, "the customer still holds the call's keys")
  })

  const revocation = customer.call("awaitRevocation", undefined)
  revocation.catch(() => {})
  await step(STEPS.hostDeletes, STEP_S, async () => {
    const { listed } = await host.call("deleteCustomer", undefined)
    check(listed === "gone", `the host's list still shows the account as ${listed}`)
  })

  await step(STEPS.connectionRevoked, STEP_S, async () => {
    const closed = await revocation
    check(closed.code === 4001, `closed with code ${closed.code}`)
    check(closed.revoked, "the SDK did not take the close as a revocation")
    return closed
  }, (closed) => (closed.accessRevokedEvent ? "after an AccessRevoked event" : undefined))

  await step(STEPS.keyStoreEmptied, STEP_S, async () => {
    const state = await customer.call("keyStore", undefined)
    check(state.empty, "the key store still holds credentials")
    check(!state.fileExists, "the key store file is still there")
  }, () => "its file is removed")

  await step(STEPS.configRefused, STEP_S, async () => {
    const { refused } = await customer.call("reconnect", undefined)
    check(refused === "ConfigRevoked", refused === undefined ? "the server accepted the deleted config" : `refused with ${refused}`)
  })

  await step(STEPS.clientsEnded, STEP_S, () => Promise.all([endClient(host), endClient(customer)]))

  await step(STEPS.serverStopped, PROCESS_START_S, async () => {
    stopping.add(server.child)
    server.child.kill("SIGTERM")
    const { code, signal } = await exited(server.child)
    check(code === 0, `the server ended with ${signal ?? `exit code ${code}`}${server.stderr() === "" ? "" : `: ${server.stderr()}`}`)
  })

  await step(
    STEPS.storageHasNoProfile,
    PROCESS_START_S,
    () => (storage.kind === "embedded" ? scanDataDir(storage.dataDir) : scanDatabase(storage.databaseUrl!)),
    (scanned) => scanned
  )

  await step(STEPS.auditVerify, CLI_S, async () => {
    const run = await tessera(["audit", "verify"], serverEnv, workDir)
    if (run.code !== 0) throw cliFailure(run)
    const summary = run.stdout.trim().split("\n").at(-1) ?? ""
    check(/every hash chain is intact/.test(summary), `it printed: ${summary}`)
    return summary
  }, (summary) => summary)
}

const main = async (): Promise<number> => {
  const started = Date.now()
  const workDir = await mkdtemp(join(tmpdir(), "tessera-demo-"))
  const storage = storageFor(workDir)
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = true
    interrupt(new Error(`interrupted (${signal})`))
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.stdout.write(
    `tessera demo: ${storage.kind === "embedded" ? "embedded database in a fresh data directory" : "the database from DATABASE_URL"}` +
      `, host and customer in their own processes\n`
  )
  let exitCode = 0
  try {
    await story(workDir, storage)
    process.stdout.write(`demo passed: all ${stepsDone()} steps in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  } catch (error) {
    exitCode = 1
    if (error instanceof StepFailed) {
      process.stdout.write(`demo failed at step ${stepsDone() + 1} of ${STEP_TITLES.length}: ${error.message}\n`)
    } else {
      process.stdout.write(`demo failed: ${redact(error instanceof Error ? error.message : String(error))}\n`)
    }
  } finally {
    for (const child of processes) stopping.add(child)
    await stopAll()
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 })
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
  if (signalled) exitCode = 130
  return exitCode
}

// `npm run demo -- --media`: the call media in real headless Chromium instead (media.ts).
process.exitCode = process.argv.slice(2).includes("--media") ? await (await import("./media.js")).runMediaDemo() : await main()
