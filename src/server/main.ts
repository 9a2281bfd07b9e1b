/**
 * `npm start`: the connection server. Configuration comes from the environment (README). SIGINT/SIGTERM shut it
 * down gracefully: no new connections, open ones closed with 1001, workers and database closed in order.
 * The start line names the listening port and the storage kind only; nothing identifying is ever logged.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer, Option } from "effect"
import { UwsServer } from "../rpc/UwsServer.js"
import { readServerSettings } from "./Config.js"
import { ServerLive } from "./Server.js"

const program = Effect.gen(function*() {
  const settings = yield* readServerSettings
  yield* Layer.launch(
    Layer.effectDiscard(Effect.gen(function*() {
      const server = yield* UwsServer
      const storage = Option.isSome(settings.databaseUrl) ? "postgres" : `embedded database in ${settings.dataDir}`
      const scheme = Option.isSome(settings.tls) ? "wss" : "ws"
      yield* Effect.sync(() =>
        process.stdout.write(`tessera listening on ${scheme}://${settings.host}:${server.port}/rpc (${storage})\n`)
      )
    })).pipe(Layer.provideMerge(ServerLive(settings)))
  )
})

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (typeof error === "string") return error
    if (error instanceof Error || (typeof error === "object" && error !== null && "message" in error)) {
      return String((error as { message: unknown }).message)
    }
  }
  return Cause.pretty(cause)
}

program.pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.sync(() => process.stderr.write(`tessera: cannot start: ${describe(cause)}\n`))
  ),
  Effect.catchAllCause(() => Effect.sync(() => process.exit(1))),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
