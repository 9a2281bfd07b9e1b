/**
 * One WebSocket connection to a tessera server, carrying the typed RPC client of the public contract.
 *
 * The server binds authentication to the connection, so a connection never reconnects by itself underneath its
 * caller (as @effect/rpc's socket protocol would): when it closes, `closed` completes with the close code and every
 * pending call fails. The caller (DeviceSession) decides whether to connect again and authenticates afresh.
 */
import { Socket } from "@effect/platform"
import { RpcClient, RpcSerialization, type RpcGroup } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Deferred, Effect, Layer, Schema, type Scope } from "effect"
import { TesseraRpcs } from "../rpc/contract.js"

export type TesseraRpcClient = RpcClient.RpcClient<RpcGroup.Rpcs<typeof TesseraRpcs>, RpcClientError>

/** Close codes the server uses on purpose (see src/actors/Sessions.ts). */
export const CLOSE_ACCESS_REVOKED = 4001
export const CLOSE_TOO_SLOW = 4008

export class ConnectionFailed extends Schema.TaggedError<ConnectionFailed>()("ConnectionFailed", {
  reason: Schema.String
}) {
  override get message() { return `Cannot reach the tessera server: ${this.reason}` }
}

export interface ConnectionClosed {
  /** WebSocket close code; 1006 when the connection broke without one. */
  readonly code: number
}

export interface Connection {
  readonly rpc: TesseraRpcClient
  /** Completes once, when the connection has closed (or could not be opened). */
  readonly closed: Deferred.Deferred<ConnectionClosed>
}

/** A Socket that runs exactly once: its first close ends it for good and is reported with its code. */
const singleUseSocket = (url: string, opened: Deferred.Deferred<void>, closed: Deferred.Deferred<ConnectionClosed>) =>
  Layer.effect(
    Socket.Socket,
    Effect.gen(function*() {
      const socket = yield* Socket.makeWebSocket(url, { closeCodeIsError: () => true, openTimeout: 10_000 })
      let used = false
      return {
        ...socket,
        runRaw: (handler, options) => {
          if (used) return Effect.never
          used = true
          return socket.runRaw(handler, {
            onOpen: Effect.zipRight(options?.onOpen ?? Effect.void, Deferred.succeed(opened, undefined))
          }).pipe(
            Effect.tapErrorCause((cause) => {
              const error = cause._tag === "Fail" ? cause.error : undefined
              const code = Socket.SocketCloseError.is(error) ? error.code : 1006
              return Deferred.succeed(closed, { code })
            }),
            Effect.ensuring(Deferred.succeed(closed, { code: 1000 }))
          )
        }
      } satisfies Socket.Socket
    })
  )

/** Opens a connection for the current scope; fails with ConnectionFailed when the server cannot be reached. */
export const openConnection = (
  url: string
): Effect.Effect<Connection, ConnectionFailed, Scope.Scope | Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const opened = yield* Deferred.make<void>()
    const closed = yield* Deferred.make<ConnectionClosed>()
    const protocol = RpcClient.layerProtocolSocket().pipe(
      Layer.provide(singleUseSocket(url, opened, closed)),
      Layer.provide(RpcSerialization.layerMsgPack)
    )
    const context = yield* Layer.build(protocol)
    const rpc = yield* RpcClient.make(TesseraRpcs).pipe(Effect.provide(context))
    const outcome = yield* Effect.raceFirst(
      Effect.as(Deferred.await(opened), "open" as const),
      Effect.map(Deferred.await(closed), (c) => c.code)
    )
    if (outcome !== "open") return yield* new ConnectionFailed({ reason: `connection closed (${outcome}) before it opened` })
    return { rpc, closed }
  })
