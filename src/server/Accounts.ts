/**
 * The persistent half of the system, shared by the server and the operator CLI: the database (external Postgres or
 * the embedded one), the master key, per-account data keys, the event store, the server's derived keys, and the
 * account services on top of the actors. Both read DATABASE_URL and the master key the same way.
 */
import { Layer, Option, Redacted } from "effect"
import { ActivationLive } from "../actors/Activation.js"
import { AccountActorsLive } from "../actors/AccountActors.js"
import { ConfigFilesLive } from "../actors/ConfigFiles.js"
import { CustomerAccountsLive } from "../actors/CustomerAccounts.js"
import { EnrollmentLive } from "../actors/Enrollment.js"
import { DataKeysLive } from "../eventstore/DataKeys.js"
import { DatabaseLive } from "../eventstore/Database.js"
import { EventStoreLive } from "../eventstore/EventStore.js"
import { MasterKeyLive } from "../eventstore/MasterKey.js"
import { ServerConfig, type ServerSettings } from "./Config.js"
import { ServerKeysLive } from "./ServerKeys.js"

export interface StorageOptions {
  /** Run migrations when the database layer starts (default true). */
  readonly migrate?: boolean
  readonly maxConnections?: number
}

/** The database the settings name: DATABASE_URL, or the embedded one in the data directory. */
export const DatabaseFromSettings = (settings: ServerSettings, options: StorageOptions = {}) =>
  DatabaseLive({
    databaseUrl: Option.map(settings.databaseUrl, Redacted.value),
    dataDir: settings.dataDir,
    ...(options.migrate === undefined ? {} : { migrate: options.migrate }),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
  })

/** Database, master key, data keys, event store and the server's derived keys. */
export const StorageLive = (settings: ServerSettings, options: StorageOptions = {}) => {
  const database = DatabaseFromSettings(settings, options)
  const masterKey = MasterKeyLive({ databaseUrl: Option.map(settings.databaseUrl, Redacted.value), dataDir: settings.dataDir })
  return Layer.mergeAll(EventStoreLive, DataKeysLive, ServerKeysLive).pipe(
    Layer.provideMerge(Layer.merge(database, masterKey))
  )
}

/** The account services (enrollment, customer accounts, activation, config files) over the actors and storage. */
export const AccountsLive = (settings: ServerSettings, options: StorageOptions = {}) => {
  const actors = ConfigFilesLive.pipe(Layer.provideMerge(AccountActorsLive))
  const services = Layer.mergeAll(EnrollmentLive, CustomerAccountsLive, ActivationLive).pipe(Layer.provideMerge(actors))
  return services.pipe(
    Layer.provideMerge(StorageLive(settings, options)),
    Layer.provideMerge(Layer.succeed(ServerConfig, settings))
  )
}
