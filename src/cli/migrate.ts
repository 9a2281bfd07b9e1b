/** `tessera migrate`: applies the pending database migrations and says which ran. */
import { Console, Effect } from "effect"
import { runMigrations } from "../eventstore/Database.js"
import { EXIT_OK, readWords } from "./args.js"
import { CliFailure, runCommand } from "./run.js"
import { withDatabase } from "./storage.js"

const MIGRATE_USAGE = `usage: tessera migrate

Applies the database migrations that have not run yet (DATABASE_URL, or the embedded database in TESSERA_DATA_DIR)
and prints one line "applied NNNN_name" per migration, or "the database is up to date". The server also migrates
when it starts; this command needs no master key.`

const migrate = Effect.gen(function*() {
  const applied = yield* runMigrations.pipe(
    Effect.mapError((error) => new CliFailure({ message: `migrations failed: ${error.message}` }))
  )
  if (applied.length === 0) yield* Console.log("the database is up to date")
  for (const [id, name] of applied) yield* Console.log(`applied ${String(id).padStart(4, "0")}_${name}`)
  return EXIT_OK
})

export const runMigrate = (args: ReadonlyArray<string>): Promise<number> => {
  const words = readWords(MIGRATE_USAGE, args, { positionals: [0, 0] })
  if (typeof words === "number") return Promise.resolve(words)
  return runCommand(withDatabase(migrate, { migrate: false }))
}
