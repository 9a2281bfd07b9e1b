/**
 * The processes of the media demo and the call bench: the operator CLI (`tessera host enroll`) and the server
 * (src/demo/server.ts, which is `npm start`'s server and stops when its parent goes away). Every process started
 * here is tracked and killed at the latest when this process exits; `stopAll` ends them gracefully first.
 */
import { type ChildProcess, fork, spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const TSX = ["--import", import.meta.resolve("tsx")]

const processes = new Set<ChildProcess>()
const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null
process.on("exit", () => {
  for (const child of processes) if (running(child)) child.kill("SIGKILL")
})

const track = (child: ChildProcess) => {
  processes.add(child)
  child.once("exit", () => processes.delete(child))
  return child
}

export const exited = (child: ChildProcess) =>
  running(child)
    ? new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    )
    : Promise.resolve({ code: child.exitCode, signal: child.signalCode })

/** SIGTERM, then SIGKILL after 20 s; resolves when the process is gone. */
export const stop = async (child: ChildProcess) => {
  if (!running(child)) return
  child.kill("SIGTERM")
  const timer = setTimeout(() => running(child) && child.kill("SIGKILL"), 20_000)
  await exited(child)
  clearTimeout(timer)
}

export const stopAll = () => Promise.all([...processes].map(stop))

/** The inherited environment without any tessera setting, so that only the caller's own apply. */
export const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name === "DATABASE_URL" || name === "HOST" || name === "PORT") continue
    if (name.startsWith("TESSERA_") || name.startsWith("TLS_")) continue
    env[name] = value
  }
  return env
}

const lastLine = (text: string) => text.trim().split("\n").filter((l) => l.trim() !== "").at(-1) ?? "no message"

/** `tessera host enroll` on the server's storage; resolves with the one-time enrollment code. */
export const enrollHost = (env: Readonly<Record<string, string>>, cwd: string) =>
  new Promise<string>((resolve, reject) => {
    const child = track(spawn(process.execPath, [join(ROOT, "bin", "tessera.mjs"), "host", "enroll"], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    }))
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.once("error", reject)
    child.once("close", (code) => {
      const enrollment = /^code:\s+(\S+)\s*$/m.exec(stdout)?.[1]
      if (code === 0 && enrollment) resolve(enrollment)
      else reject(new Error(code === 0 ? "no enrollment code in its output" : `exit code ${code}: ${lastLine(stderr)}`))
    })
  })

export interface ServerProcess {
  readonly child: ChildProcess
  readonly url: string
  /** The last line it wrote to stderr, for a failure reason. */
  readonly stderr: () => string
}

/** The server on the port it picks (PORT=0 in `env`); resolves once it listens. */
export const startServer = (env: Readonly<Record<string, string>>) =>
  new Promise<ServerProcess>((resolve, reject) => {
    const child = track(fork(join(ROOT, "src", "demo", "server.ts"), [], {
      cwd: ROOT,
      env,
      execArgv: TSX,
      stdio: ["ignore", "pipe", "pipe", "ipc"]
    }))
    let stdout = ""
    let stderr = ""
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)))
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      const port = /^tessera listening on ws:\/\/[^/\s]+:(\d+)\/rpc/m.exec(stdout)?.[1]
      if (port) resolve({ child, url: `ws://127.0.0.1:${port}/rpc`, stderr: () => lastLine(stderr) })
    })
    child.once("error", reject)
    child.once("exit", (code, signal) => reject(new Error(`the server exited (${signal ?? `exit code ${code}`}): ${lastLine(stderr)}`)))
  })
