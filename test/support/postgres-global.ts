/**
 * vitest globalSetup: makes sure the tests have a real PostgreSQL server. In order:
 *   1. TESSERA_TEST_POSTGRES_URL, when set, is used as it is;
 *   2. the local server at 127.0.0.1:5432 when user postgres can connect with trust auth (the workplace and CI);
 *   3. otherwise a private, throw-away cluster from the installed PostgreSQL binaries (scripts/setup.sh installs
 *      Debian's postgresql package when they are missing): initdb in a temp folder, trust auth on loopback only, a
 *      free port; stopped and removed when the run ends. Its URL goes to the test workers in the environment.
 *      TESSERA_TEST_PRIVATE_POSTGRES=1 picks this even when a local server is there.
 */
import { execFileSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import path from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Redacted } from "effect"

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres"

const canConnect = (url: string): Promise<boolean> =>
  Effect.flatMap(PgClient.PgClient, (sql) => sql`SELECT 1`).pipe(
    Effect.provide(
      PgClient.layer({ url: Redacted.make(url), maxConnections: 1, connectTimeout: "3 seconds" }).pipe(
        Layer.provide(Reactivity.layer)
      )
    ),
    Effect.as(true),
    Effect.timeout("5 seconds"),
    Effect.orElseSucceed(() => false),
    Effect.runPromise
  )

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

const postgresBinDir = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : path.join(root, versions[0], "bin")
}

export default async function setup(): Promise<(() => Promise<void>) | void> {
  if (process.env["TESSERA_TEST_POSTGRES_URL"]) return
  const forcePrivate = process.env["TESSERA_TEST_PRIVATE_POSTGRES"] === "1"
  if (!forcePrivate && await canConnect(DEFAULT_URL)) return
  const bin = postgresBinDir()
  if (bin === undefined) {
    throw new Error(
      "The tests need PostgreSQL: none accepts user postgres at 127.0.0.1:5432 and no PostgreSQL binaries are " +
        "installed to start a private one. Run `bash scripts/setup.sh --no-start` (installs Debian's postgresql " +
        "package) or set TESSERA_TEST_POSTGRES_URL."
    )
  }
  const dir = mkdtempSync(path.join(tmpdir(), "tessera-test-pg-"))
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres system user.
  const asRoot = process.getuid?.() === 0
  if (asRoot) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), Number(execFileSync("id", ["-g", "postgres"]).toString().trim()))
  const run = (tool: string, args: ReadonlyArray<string>) =>
    asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", path.join(bin, tool), ...args], { stdio: "pipe" })
      : execFileSync(path.join(bin, tool), [...args], { stdio: "pipe" })
  const data = path.join(dir, "data")
  run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
  const port = await freePort()
  run("pg_ctl", [
    "-D",
    data,
    "-l",
    path.join(dir, "server.log"),
    "-w",
    "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300`,
    "start"
  ])
  process.env["TESSERA_TEST_POSTGRES_URL"] = `postgres://postgres@127.0.0.1:${port}/postgres`
  return async () => {
    try {
      run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
