/**
 * What the commands run against: the server's own settings (src/server/Config.ts) and storage layers, so that the
 * CLI and the server always agree on DATABASE_URL, the data directory and the master key. Start failures become
 * one line for the operator.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import type { DatabaseStartError } from "../eventstore/Database.js"
import type { MasterKeyConfigError } from "../eventstore/MasterKey.js"
import { AccountsLive, DatabaseFromSettings } from "../server/Accounts.js"
import { readServerSettings, type ServerSettings } from "../server/Config.js"
import { CliFailure } from "./run.js"

const settings = readServerSettings.pipe(
  Effect.mapError((error) => new CliFailure({ message: typeof error === "string" ? error : `configuration: ${error}` }))
)

/** The innermost message of an error's cause chain, e.g. Postgres's own "database ... does not exist". */
const rootMessage = (error: unknown): string | undefined => {
  let message: string | undefined
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current.message.trim() !== "") message = current.message.split("\n")[0]
  }
  return message
}

const explainStartFailure = (error: DatabaseStartError | MasterKeyConfigError): CliFailure => {
  if (error._tag === "MasterKeyConfigError") return new CliFailure({ message: error.message })
  if (error.reason === "in-use") {
    return new CliFailure({ message: `${error.message}: stop the server first, or use DATABASE_URL` })
  }
  const reason = rootMessage(error.cause)
  return new CliFailure({ message: reason === undefined ? error.message : `${error.message}: ${reason}` })
}

const withLayer = <ROut, A, E, R>(
  layerOf: (settings: ServerSettings) => Layer.Layer<ROut, DatabaseStartError | MasterKeyConfigError>,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | CliFailure, Exclude<R, ROut>> =>
  Effect.flatMap(settings, (current) => Effect.provide(effect, Layer.mapError(layerOf(current), explainStartFailure)))

/**
 * The database alone, for commands that need no key: migrations and the audit (an auditor can check the chains
 * without the master key). `migrate: false` leaves the migrations to the caller.
 */
export const withDatabase = <A, E, R>(effect: Effect.Effect<A, E, R>, options: { readonly migrate?: boolean } = {}) =>
  withLayer(
    (current) =>
      DatabaseFromSettings(current, { maxConnections: 1, ...options }) as Layer.Layer<SqlClient.SqlClient, DatabaseStartError>,
    effect
  )

/** Storage, master key and the account services, exactly as the server builds them. */
export const withAccounts = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  withLayer((current) => AccountsLive(current, { maxConnections: 2 }), effect)
