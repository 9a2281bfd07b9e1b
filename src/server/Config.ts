/**
 * Server configuration, read from the environment once at start. Every variable is documented in the README.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"

export interface ServerSettings {
  readonly host: string
  readonly port: number
  /** Where clients reach this server; goes into every config file. */
  readonly publicUrl: string
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly dataDir: string
  readonly tls: Option.Option<{ readonly certFile: string; readonly keyFile: string }>
  readonly maxMessageBytes: number
  /** How long an incoming call rings before it ends as unanswered. */
  readonly ringSeconds: number
  /** After how long without commands an account actor is passivated. */
  readonly actorIdleSeconds: number
  /** Failed activation/enrollment attempts allowed per client address and window. */
  readonly codeAttempts: number
  readonly codeAttemptWindowSeconds: number
  /** How long a connection may stay open without authenticating (0: no bound). */
  readonly admissionDeadlineSeconds: number
  /** Connections open and not yet authenticated, at most; more are refused until some authenticate or close. */
  readonly maxPendingConnections: number
}

export class ServerConfig extends Context.Tag("tessera/ServerConfig")<ServerConfig, ServerSettings>() {}

/** Reads the settings from the environment (ConfigProvider); the CLI uses the same reading as the server. */
export const readServerSettings = Effect.gen(function*() {
  const host = yield* Config.string("HOST").pipe(Config.withDefault("127.0.0.1"))
  // 0 is allowed: the system picks a free port, and the start line names the bound one.
  const port = yield* Config.integer("PORT").pipe(
    Config.validate({ message: "PORT must be 0 to 65535", validation: (n) => n >= 0 && n <= 65535 }),
    Config.withDefault(8080)
  )
  const certFile = yield* Config.option(Config.string("TLS_CERT_FILE"))
  const keyFile = yield* Config.option(Config.string("TLS_KEY_FILE"))
  const tls = Option.all({ certFile, keyFile })
  if (Option.isSome(certFile) !== Option.isSome(keyFile)) {
    return yield* Effect.fail("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
  }
  const scheme = Option.isSome(tls) ? "wss" : "ws"
  const publicHost = host === "0.0.0.0" || host === "::" ? "localhost" : host
  const publicUrl = yield* Config.string("TESSERA_PUBLIC_URL").pipe(
    Config.withDefault(`${scheme}://${publicHost}:${port}/rpc`)
  )
  return {
    host,
    port,
    publicUrl,
    databaseUrl: yield* Config.option(Config.redacted("DATABASE_URL")),
    dataDir: yield* Config.string("TESSERA_DATA_DIR").pipe(Config.withDefault("./data")),
    tls,
    maxMessageBytes: yield* Config.integer("TESSERA_MAX_MESSAGE_BYTES").pipe(Config.withDefault(64 * 1024)),
    ringSeconds: yield* Config.number("TESSERA_RING_SECONDS").pipe(Config.withDefault(30)),
    actorIdleSeconds: yield* Config.number("TESSERA_ACTOR_IDLE_SECONDS").pipe(Config.withDefault(120)),
    codeAttempts: yield* Config.integer("TESSERA_CODE_ATTEMPTS").pipe(Config.withDefault(10)),
    codeAttemptWindowSeconds: yield* Config.integer("TESSERA_CODE_ATTEMPT_WINDOW_SECONDS").pipe(Config.withDefault(900)),
    admissionDeadlineSeconds: yield* Config.number("TESSERA_AUTH_DEADLINE_SECONDS").pipe(
      Config.validate({ message: "TESSERA_AUTH_DEADLINE_SECONDS must be 0 or more", validation: (n) => n >= 0 }),
      Config.withDefault(60)
    ),
    maxPendingConnections: yield* Config.integer("TESSERA_MAX_PENDING_CONNECTIONS").pipe(
      Config.validate({ message: "TESSERA_MAX_PENDING_CONNECTIONS must be 1 or more", validation: (n) => n >= 1 }),
      Config.withDefault(4096)
    )
  } satisfies ServerSettings
})

export const ServerConfigLive = Layer.effect(ServerConfig, Effect.orDie(readServerSettings))
