// RpcServer.Protocol over the uWS WebSocket endpoint: one RPC client per WebSocket, one frame per message, encoded
// with whatever RpcSerialization is in context (msgpack frames go out binary, JSON ones as text). Stock clients
// (`RpcClient.layerProtocolSocket` over `Socket.layerWebSocket`) speak it unchanged.
//
// Bad input never reaches past one connection. A frame the serialization cannot decode (or that ends inside a
// value), or that decodes to something other than RPC messages, or whose message makes the RPC server throw, is a
// protocol violation that a stock client never commits: that connection gets a `Defect` response (as
// @effect/rpc's own socket protocol sends for undecodable input; a stock client fails its pending calls with it)
// followed by close code 1007, and nothing else is affected. Well-formed messages with an unknown RPC tag or a
// payload that does not decode are answered by RpcServer itself (`Defect` / a per-request defect) and the
// connection stays open.
//
// A connection may have at most `maxRequestsInFlight` requests (default 256) that the server has not yet answered
// (streams count until they end), and may not reuse the id of one of them. A stock client stays far below and
// never reuses an id; one that does either gets a `Defect` and close code 1008, so that no one connection can queue
// unbounded work on the server.
import * as RpcMessage from "@effect/rpc/RpcMessage"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { constVoid } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { UwsServer } from "./server.js"
import { CloseCode, type Connection } from "./Connection.js"

interface Client {
  readonly connection: Connection
  /** Decoded messages waiting to be handed to RpcServer, in arrival order. */
  inbox: Array<RpcMessage.FromClientEncoded>
  head: number
  /** Whether a fiber is currently draining `inbox`. */
  draining: boolean
  /** Ids of the requests handed to RpcServer that it has not answered with an Exit yet. */
  readonly inFlight: Set<string>
}

export const DEFAULT_MAX_REQUESTS_IN_FLIGHT = 256
const tooManyInFlight = "Too many requests in flight"
const idInFlight = "Request id already in flight"

/** A request id as RpcServer reads it (a bigint), so that the ids it answers match the ones counted here. */
const canonicalId = (id: unknown): string => {
  try {
    return BigInt(id as string).toString()
  } catch {
    // RpcServer refuses it as well (that connection is then closed as malformed); counted under its text meanwhile.
    return String(id)
  }
}

const malformedMessage = "Malformed RPC message"

const isMessage = (value: unknown): value is RpcMessage.FromClientEncoded =>
  typeof value === "object" && value !== null && typeof (value as { _tag?: unknown })._tag === "string"

export interface ProtocolOptions {
  /** Unanswered requests one connection may have; beyond, it is closed (1008). */
  readonly maxRequestsInFlight?: number
}

export const makeProtocol = (options: ProtocolOptions = {}): Effect.Effect<
  RpcServer.Protocol["Type"],
  never,
  UwsServer | RpcSerialization.RpcSerialization | Scope.Scope
> => Effect.gen(function*() {
  const maxInFlight = options.maxRequestsInFlight ?? DEFAULT_MAX_REQUESTS_IN_FLIGHT
  const server = yield* UwsServer
  const serialization = yield* RpcSerialization.RpcSerialization
  const disconnects = yield* Mailbox.make<number>()
  // Deliveries run with an empty context: RpcServer merges the delivering fiber's context into every request
  // fiber it starts (and keeps that fiber for as long as the request runs), and nothing there needs this layer's.
  const runtime = yield* Effect.runtime<never>()
  const runFork = Runtime.runFork(Runtime.make({
    context: Context.empty(),
    fiberRefs: runtime.fiberRefs,
    runtimeFlags: runtime.runtimeFlags
  }))
  const clients = new Map<number, Client>()
  // No parser per connection (with its encoder's closures it was a good part of an idle session). Encoding keeps
  // no state between messages, so one encoder serves every connection. A frame is decoded by a fresh parser of
  // its own: a parser carries the unfinished tail of one input into the next, and a frame is a whole message.
  const encoder = serialization.unsafeMake()
  const decode = (data: Uint8Array): ReadonlyArray<unknown> => serialization.unsafeMake().decode(data)
  const clientIds = new Set<number>()

  let writeRequest!: (clientId: number, message: RpcMessage.FromClientEncoded) => Effect.Effect<void>

  const reject = (client: Client, reason = malformedMessage, code: number = CloseCode.InvalidPayload): void => {
    if (client.connection.closed) return
    const encoded = encoder.encode(RpcMessage.ResponseDefectEncoded(reason))
    if (encoded !== undefined) client.connection.write(encoded)
    client.connection.close(code, reason)
  }

  const deliver = (client: Client, message: RpcMessage.FromClientEncoded): Effect.Effect<void> =>
    Effect.catchAllDefect(
      Effect.suspend(() => writeRequest(client.connection.id, message)),
      () => Effect.sync(() => reject(client))
    )

  // One fiber per burst of messages rather than per message; it stops (and says so) atomically with finding the
  // inbox empty, so a message pushed afterwards always starts a new one.
  const drain = (client: Client): Effect.Effect<void> =>
    Effect.whileLoop({
      while: () => {
        if (client.head < client.inbox.length && !client.connection.closed) return true
        client.inbox = []
        client.head = 0
        client.draining = false
        return false
      },
      body: () => deliver(client, client.inbox[client.head++]!),
      step: constVoid
    })

  const protocol = yield* RpcServer.Protocol.make((writeRequest_) => {
    writeRequest = writeRequest_
    return Effect.succeed({
      disconnects,
      send: (clientId, response) =>
        Effect.sync(() => {
          const client = clients.get(clientId)
          if (client === undefined) return
          if (response._tag === "Exit") client.inFlight.delete(String(response.requestId))
          let encoded: Uint8Array | string | undefined
          try {
            encoded = encoder.encode(response)
          } catch (cause) {
            encoded = encoder.encode(RpcMessage.ResponseDefectEncoded(cause))
          }
          if (encoded !== undefined) client.connection.write(encoded)
        }),
      end: () => Effect.void,
      clientIds: Effect.sync(() => clientIds),
      initialMessage: Effect.succeedNone,
      supportsAck: true,
      supportsTransferables: false,
      supportsSpanPropagation: true
    })
  })

  yield* server.attachSocketHandler({
    onOpen: (connection) => {
      clients.set(connection.id, {
        connection,
        inbox: [],
        head: 0,
        draining: false,
        inFlight: new Set()
      })
      clientIds.add(connection.id)
    },
    onMessage: (connection, data) => {
      const client = clients.get(connection.id)
      if (client === undefined) return
      let decoded: ReadonlyArray<unknown>
      try {
        decoded = decode(data)
      } catch {
        reject(client)
        return
      }
      // A frame is a whole message; decoding to nothing means it ended inside one.
      if (decoded.length === 0) {
        reject(client)
        return
      }
      for (const message of decoded) {
        if (!isMessage(message)) {
          reject(client)
          return
        }
      }
      for (const message of decoded as ReadonlyArray<RpcMessage.FromClientEncoded>) {
        if (message._tag === "Request") {
          if (client.inFlight.size >= maxInFlight) {
            reject(client, tooManyInFlight, CloseCode.PolicyViolation)
            return
          }
          // RpcServer makes a request wait for an earlier one with the same id ("7" and "07" are one to it): an
          // id reused while in flight would queue work that no bound counts, and a stock client never does it.
          const id = canonicalId(message.id)
          if (client.inFlight.has(id)) {
            reject(client, idInFlight, CloseCode.PolicyViolation)
            return
          }
          client.inFlight.add(id)
        }
        client.inbox.push(message)
      }
      if (!client.draining) {
        client.draining = true
        runFork(drain(client))
      }
    },
    onClose: (connection) => {
      clients.delete(connection.id)
      clientIds.delete(connection.id)
      disconnects.unsafeOffer(connection.id)
    }
  })

  return protocol
})

/** RpcServer.Protocol served by the UwsServer's WebSocket endpoint. */
export const layerProtocolWith = (
  options: ProtocolOptions
): Layer.Layer<RpcServer.Protocol, never, UwsServer | RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcServer.Protocol, makeProtocol(options))

export const layerProtocol = layerProtocolWith({})
