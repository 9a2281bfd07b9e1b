/**
 * `tessera`, the operator CLI: dispatches to the commands and exits with their code. A command's module (and the
 * database, actors or crypto it needs) loads only when that command runs, so help answers at once.
 */
import { badUsage, showHelp } from "./args.js"

const USAGE = `usage: tessera COMMAND [ARGS]

Operator commands for a tessera server. They read the server's environment: DATABASE_URL (unset: the embedded
database in TESSERA_DATA_DIR, default ./data, which the server must not have open at the same time) and
TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE (with the embedded database: the key file in its data directory).

commands:
  migrate                          apply the pending database migrations
  host enroll [--valid-for D]      enroll a host account and print its one-time enrollment code
  host code HOST_ID [--valid-for D]
                                   issue a fresh enrollment code for a host (the previous one stops working)
  audit verify                     check every event stream's hash chain
  audit replay                     print every stream's lifecycle (opaque ids, event types and dates only)
  kat sframe FILE.json             run SFrame known-answer test vectors
  help [COMMAND]                   show this text, or a command's

"tessera COMMAND --help" explains a command. Exit codes: 0 done, 1 failed, 2 bad usage.`

const COMMANDS: Readonly<Record<string, (args: ReadonlyArray<string>) => Promise<number>>> = {
  migrate: (args) => import("./migrate.js").then((command) => command.runMigrate(args)),
  host: (args) => import("./host.js").then((command) => command.runHost(args)),
  audit: (args) => import("./audit.js").then((command) => command.runAudit(args)),
  kat: (args) => import("./kat.js").then((command) => command.runKat(args))
}

const commandNamed = (name: string) => Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined

const main = (args: ReadonlyArray<string>): Promise<number> | number => {
  const [name, ...rest] = args
  if (name === undefined) return badUsage(USAGE)
  if (name === "--help" || name === "-h") return showHelp(USAGE)
  if (name === "help") {
    if (rest.length === 0) return showHelp(USAGE)
    const command = commandNamed(rest[0]!)
    if (command === undefined || rest.length > 1) return badUsage(USAGE, `unknown command "${rest.join(" ")}"`)
    return command(["--help"])
  }
  const command = commandNamed(name)
  if (command === undefined) return badUsage(USAGE, `unknown command "${name}"`)
  return command(rest)
}

process.exitCode = await main(process.argv.slice(2))
