// Shared by the uWS transport tests: a small RpcGroup with its handlers, the server under test, stock clients, and
// raw WebSocket / raw TCP peers for input a stock client never sends.
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import * as Net from "node:net"
import * as UwsServer from "../../src/rpc/UwsServer.js"

export class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

export const Echo = Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })
export const Count = Rpc.make("Count", { payload: { upTo: Schema.Number }, success: Schema.Number, stream: true })
export const Fail = Rpc.make("Fail", { payload: { reason: Schema.String }, error: Boom })
/** Ticks until the caller stops listening. */
export const Ticks = Rpc.make("Ticks", { success: Schema.Number, stream: true })
export const WhoAmI = Rpc.make("WhoAmI", { success: Schema.Number })
export const Blob = Rpc.make("Blob", { success: Schema.Uint8ArrayFromSelf })

export class TestGroup extends RpcGroup.make(Echo, Count, Fail, Ticks, WhoAmI, Blob) {}

/** A client-side view with an RPC the server does not have. */
export class ClientOnlyGroup extends TestGroup.add(Rpc.make("Unknown", { success: Schema.String })) {}

export const blobBytes = 64 * 1024
const blob = new Uint8Array(blobBytes).fill(7)

/** Completed when a `Ticks` stream on the server has been stopped. */
export class TicksStopped extends Context.Tag("test/TicksStopped")<TicksStopped, Deferred.Deferred<void>>() {}

const HandlersLive = TestGroup.toLayer(Effect.gen(function*() {
  const ticksStopped = yield* TicksStopped
  return {
    Echo: ({ text }) => Effect.succeed(text),
    Count: ({ upTo }) => Stream.range(1, upTo),
    Fail: ({ reason }) => Effect.fail(new Boom({ reason })),
    Ticks: () =>
      Stream.iterate(0, (n) => n + 1).pipe(
        Stream.schedule(Schedule.spaced("5 millis")),
        Stream.ensuring(Deferred.succeed(ticksStopped, undefined))
      ),
    WhoAmI: (_, { clientId }) => Effect.succeed(clientId),
    Blob: () => Effect.succeed(blob)
  }
}))

export interface TestServer {
  readonly server: UwsServer.UwsServerService
  readonly ticksStopped: Deferred.Deferred<void>
  readonly url: string
}

/** The RPC server on uWS, msgpack, on an ephemeral loopback port, for the current scope. */
export const startServer = (
  options: Partial<UwsServer.UwsServerOptions & UwsServer.ProtocolOptions> = {}
): Effect.Effect<TestServer, UwsServer.UwsListenError, Scope.Scope> =>
  Effect.gen(function*() {
    const ticksStopped = yield* Deferred.make<void>()
    const context = yield* Layer.build(
      RpcServer.layer(TestGroup).pipe(
        Layer.provide(HandlersLive),
        Layer.provide(Layer.succeed(TicksStopped, ticksStopped)),
        Layer.provideMerge(UwsServer.layerWithProtocol({ host: "127.0.0.1", port: 0, ...options })),
        Layer.provide(RpcSerialization.layerMsgPack)
      )
    )
    const server = Context.get(context, UwsServer.UwsServer)
    return { server, ticksStopped, url: `ws://127.0.0.1:${server.port}/rpc` }
  })

/** A stock @effect/rpc client (socket protocol, Node WebSocket, msgpack) for the current scope. */
export const connectClientFor = <Rpcs extends Rpc.Any>(url: string, group: RpcGroup.RpcGroup<Rpcs>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      RpcClient.layerProtocolSocket().pipe(
        Layer.provide(Socket.layerWebSocket(url)),
        Layer.provide(NodeSocket.layerWebSocketConstructor),
        Layer.provide(RpcSerialization.layerMsgPack)
      )
    )
    return yield* RpcClient.make(group).pipe(Effect.provide(context))
  })

export const connectClient = (url: string) => connectClientFor(url, TestGroup)

export const codec = () => RpcSerialization.msgPack.unsafeMake()

export interface RawPeer {
  readonly send: (frame: Uint8Array | string) => Effect.Effect<void>
  /** Completes with the close code the server sent (1006 when the connection was cut without one). */
  readonly closed: Effect.Effect<number>
  /** Frames received so far. */
  readonly received: ReadonlyArray<Uint8Array | string>
  /** Waits for the next frame. */
  readonly take: Effect.Effect<Uint8Array | string>
}

/** A raw WebSocket peer (Node's WebSocket through @effect/platform) for frames a stock client never sends. */
export const rawPeer = (url: string): Effect.Effect<RawPeer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* Socket.makeWebSocket(url, { closeCodeIsError: () => true }).pipe(
      Effect.provide(NodeSocket.layerWebSocketConstructor)
    )
    const write = yield* socket.writer
    const received: Array<Uint8Array | string> = []
    const incoming = yield* Queue.unbounded<Uint8Array | string>()
    const opened = yield* Deferred.make<void>()
    const closed = yield* socket.runRaw((frame) => {
      received.push(frame)
      incoming.unsafeOffer(frame)
    }, { onOpen: Deferred.succeed(opened, undefined) }).pipe(
      Effect.as(1000),
      Effect.catchAll((error) => Effect.succeed(error.reason === "Close" ? (error as Socket.SocketCloseError).code : -1)),
      Effect.forkScoped
    )
    yield* Deferred.await(opened)
    return {
      send: (frame) => Effect.orDie(write(frame)),
      closed: Effect.orDie(closed.await.pipe(Effect.flatten)),
      received,
      take: Queue.take(incoming)
    }
  })

/**
 * A WebSocket peer on a raw TCP socket that stops reading after the handshake, for backpressure. `resume` reads
 * everything the server had sent and returns the close code found in its close frame (undefined if none).
 */
export interface StalledPeer {
  readonly send: (payload: Uint8Array) => void
  readonly resume: Effect.Effect<number | undefined>
}

export const stalledPeer = (port: number): Effect.Effect<StalledPeer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ socket: Net.Socket; rest: Buffer }>((resume) => {
      const key = randomBytes(16).toString("base64")
      const socket = Net.connect(port, "127.0.0.1", () => {
        socket.write(
          `GET /rpc HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
        )
      })
      let head = Buffer.alloc(0)
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end === -1) return
        socket.off("data", onData)
        socket.pause()
        const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64")
        resume(
          head.subarray(0, end).toString().includes(accept)
            ? Effect.succeed({ socket, rest: head.subarray(end + 4) })
            : Effect.dieMessage("WebSocket handshake failed")
        )
      }
      socket.on("data", onData)
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map(({ rest, socket }) => ({
    send: (payload) => socket.write(maskedBinaryFrame(payload)),
    resume: Effect.async<number | undefined>((resume) => {
      let buffer = rest
      const scan = () => {
        for (;;) {
          const frame = parseServerFrame(buffer)
          if (frame === undefined) return
          buffer = buffer.subarray(frame.size)
          if (frame.opcode === 0x8) {
            socket.destroy()
            resume(Effect.succeed(frame.payload.byteLength >= 2 ? frame.payload.readUInt16BE(0) : undefined))
            return
          }
        }
      }
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk])
        scan()
      })
      socket.on("close", () => resume(Effect.succeed(undefined)))
      socket.resume()
      scan()
    })
  })))

const maskedBinaryFrame = (payload: Uint8Array): Buffer => {
  const length = payload.byteLength
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.alloc(header + 4 + length)
  frame[0] = 0x82
  if (length < 126) {
    frame[1] = 0x80 | length
  } else if (length < 65536) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  const mask = randomBytes(4)
  mask.copy(frame, header)
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!
  return frame
}

const parseServerFrame = (buffer: Buffer): { opcode: number; payload: Buffer; size: number } | undefined => {
  if (buffer.length < 2) return undefined
  let length = buffer[1]! & 0x7f
  let offset = 2
  if (length === 126) {
    if (buffer.length < 4) return undefined
    length = buffer.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (buffer.length < 10) return undefined
    length = Number(buffer.readBigUInt64BE(2))
    offset = 10
  }
  if (buffer.length < offset + length) return undefined
  return { opcode: buffer[0]! & 0x0f, payload: buffer.subarray(offset, offset + length), size: offset + length }
}
