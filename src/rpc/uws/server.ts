// The server's single uWebSockets.js app: plain HTTP routes (health, metrics, static files) and the WebSocket
// endpoint that carries RPC (./protocol.ts puts the RpcServer.Protocol on top of it).
//
// Every WebSocket gets a numeric client id, which is also its RpcServer client id, so RPC handlers can close their
// own connection (`closeClient`) or rate-limit by address (`remoteAddressOf`, memory only, never logged).
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { access, constants } from "node:fs/promises"
import { CloseCode, Connection, type ConnectionLimits, type SocketData } from "./Connection.js"
import { type HttpMethod, type HttpRouteHandler, makeHttpDispatcher, RouteTable } from "./http.js"
import { closeListenSocket, localPort, makeApp, type us_listen_socket, type WebSocket } from "./native.js"

export interface UwsServerOptions {
  readonly host: string
  /** 0 picks a free port; the bound one is `UwsServer.port`. */
  readonly port: number
  /** Default "/rpc". */
  readonly wsPath?: string
  /** Largest accepted WebSocket message and HTTP request body. Default 64 KiB. */
  readonly maxMessageBytes?: number
  /** Bytes uWS may hold unsent for one socket before further messages wait in its queue. Default 1 MiB. */
  readonly maxBackpressureBytes?: number
  /** Bytes one socket's queue may reach before that socket is closed with 1008. Default 8 MiB. */
  readonly maxQueuedBytes?: number
  /** Seconds without traffic before uWS closes a WebSocket (uWS pings before that); 0 or 9..960. Default 120. */
  readonly idleTimeoutSeconds?: number
  /**
   * Seconds a WebSocket may stay open without being admitted (`admit`, once it authenticated) before it is closed
   * with 4003; 0 for no bound. Default 60: long enough for an onboarding device, too short to hoard sockets.
   */
  readonly admissionDeadlineSeconds?: number
  /** WebSockets open but not admitted, at most; beyond that an upgrade gets 503. Default 4096. */
  readonly maxPendingConnections?: number
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
}

export class UwsListenError extends Data.TaggedError("UwsListenError")<{
  readonly reason: "ListenFailed" | "TlsFilesUnreadable" | "InvalidOptions"
  readonly message: string
}> {}

/** How the RPC protocol plugs into the WebSocket endpoint; one handler at a time. */
export interface SocketHandler {
  readonly onOpen: (connection: Connection) => void
  /** `data` is a copy the handler may keep. */
  readonly onMessage: (connection: Connection, data: Uint8Array) => void
  readonly onClose: (connection: Connection) => void
}

export interface UwsServerService {
  /** The bound port. */
  readonly port: number
  /** Adds (or replaces) a plain HTTP route: an exact path, or a prefix written as "/static/*". */
  readonly addRoute: (method: HttpMethod, path: string, handler: HttpRouteHandler) => Effect.Effect<void>
  /** Closes that client's WebSocket with the given close code (after sending what its queue allows). */
  readonly closeClient: (clientId: number, code: number, reason: string) => Effect.Effect<void>
  /** The connection proved who it is: the admission deadline no longer applies, nor does it count as pending. */
  readonly admit: (clientId: number) => Effect.Effect<void>
  /** The peer address of an open connection. Held in memory only; never log it. */
  readonly remoteAddressOf: (clientId: number) => string | undefined
  /** Client ids of closed WebSockets, from the moment the stream is run. */
  readonly disconnects: Stream.Stream<number>
  /** Like `disconnects`, but subscribed when this effect runs, so nothing closed afterwards is missed. */
  readonly subscribeDisconnects: Effect.Effect<Queue.Dequeue<number>, never, Scope.Scope>
  readonly connectionCount: Effect.Effect<number>
  /** For the RPC protocol: the open connection with this client id. */
  readonly connection: (clientId: number) => Connection | undefined
  /** For the RPC protocol: receives the WebSocket events until the scope closes. */
  readonly attachSocketHandler: (handler: SocketHandler) => Effect.Effect<void, never, Scope.Scope>
}

export class UwsServer extends Context.Tag("tessera/rpc/UwsServer")<UwsServer, UwsServerService>() {}

/** Closes a connection that was not admitted within the deadline (the 4000s are the application's). */
export const CLOSE_NOT_ADMITTED = 4003

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT. */
const LISTEN_EXCLUSIVE_PORT = 1

const KiB = 1024
const MiB = 1024 * KiB

/** Close codes an application may send (RFC 6455 section 7.4). */
const isSendableCloseCode = (code: number): boolean =>
  Number.isInteger(code) &&
  ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))

// A close reason is at most 123 bytes of UTF-8.
const truncateReason = (reason: string): string => {
  const bytes = Buffer.from(reason)
  return bytes.byteLength <= 123 ? reason : bytes.subarray(0, 123).toString().replace(/\uFFFD+$/, "")
}

const checkOptions = (options: UwsServerOptions): Effect.Effect<void, UwsListenError> => {
  const idle = options.idleTimeoutSeconds
  if (idle !== undefined && idle !== 0 && !(idle > 8 && idle <= 960)) {
    return Effect.fail(
      new UwsListenError({ reason: "InvalidOptions", message: "idleTimeoutSeconds must be 0 or in 9..960" })
    )
  }
  const deadline = options.admissionDeadlineSeconds
  if (deadline !== undefined && !(Number.isFinite(deadline) && deadline >= 0)) {
    return Effect.fail(new UwsListenError({ reason: "InvalidOptions", message: "admissionDeadlineSeconds must be 0 or more" }))
  }
  const pending = options.maxPendingConnections
  if (pending !== undefined && !(Number.isInteger(pending) && pending > 0)) {
    return Effect.fail(new UwsListenError({ reason: "InvalidOptions", message: "maxPendingConnections must be a positive integer" }))
  }
  if (options.tls === undefined) return Effect.void
  const { certFile, keyFile } = options.tls
  return Effect.tryPromise({
    try: () => Promise.all([access(certFile, constants.R_OK), access(keyFile, constants.R_OK)]),
    catch: () =>
      new UwsListenError({ reason: "TlsFilesUnreadable", message: "TLS certificate or key file is not readable" })
  })
}

export const make = (options: UwsServerOptions): Effect.Effect<UwsServerService, UwsListenError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    const maxMessageBytes = options.maxMessageBytes ?? 64 * KiB
    const limits: ConnectionLimits = {
      maxBackpressureBytes: options.maxBackpressureBytes ?? MiB,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * MiB
    }
    const runtime = yield* Effect.runtime<never>()
    const app = makeApp(options.tls)
    const routes = new RouteTable()
    const connections = new Map<number, Connection>()
    const closedClients = yield* PubSub.unbounded<number>()
    // Connections not admitted yet, with the timer that closes them when the deadline passes.
    const pending = new Map<number, ReturnType<typeof setTimeout> | undefined>()
    const admissionMs = (options.admissionDeadlineSeconds ?? 60) * 1000
    const maxPending = options.maxPendingConnections ?? 4096
    const settle = (clientId: number) => {
      if (!pending.has(clientId)) return
      clearTimeout(pending.get(clientId))
      pending.delete(clientId)
    }
    let socketHandler: SocketHandler | undefined
    let shuttingDown = false
    let nextClientId = 1

    // Frames written during one event-loop turn leave in one corked batch per socket.
    let pendingFlush: Array<Connection> = []
    const flushPending = () => {
      const batch = pendingFlush
      pendingFlush = []
      for (const connection of batch) connection.flush()
    }
    const scheduleFlush = (connection: Connection) => {
      if (pendingFlush.push(connection) === 1) setImmediate(flushPending)
    }

    app.ws<SocketData>(options.wsPath ?? "/rpc", {
      // uWS drops a frame above maxPayloadLength by cutting the TCP connection without a close frame. Frames up to
      // twice the limit are therefore still accepted by uWS and refused here with a proper 1009; only frames beyond
      // that are cut off.
      maxPayloadLength: 2 * maxMessageBytes,
      maxBackpressure: limits.maxBackpressureBytes + maxMessageBytes,
      closeOnBackpressureLimit: 0,
      idleTimeout: options.idleTimeoutSeconds ?? 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        if (shuttingDown || socketHandler === undefined || pending.size >= maxPending) {
          res.writeStatus("503 Service Unavailable").end(undefined, true)
          return
        }
        res.upgrade<SocketData>(
          { connection: undefined },
          req.getHeader("sec-websocket-key"),
          "",
          req.getHeader("sec-websocket-extensions"),
          context
        )
      },
      open: (ws: WebSocket<SocketData>) => {
        const remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString()
        const connection = new Connection(nextClientId++, ws, remoteAddress, limits, scheduleFlush)
        ws.getUserData().connection = connection
        connections.set(connection.id, connection)
        pending.set(
          connection.id,
          admissionMs > 0
            ? setTimeout(() => {
              pending.delete(connection.id)
              connection.close(CLOSE_NOT_ADMITTED, "not authenticated in time")
            }, admissionMs)
            : undefined
        )
        socketHandler?.onOpen(connection)
      },
      message: (ws, message) => {
        const connection = ws.getUserData().connection
        if (connection === undefined || connection.closed) return
        if (message.byteLength > maxMessageBytes) {
          connection.close(CloseCode.MessageTooBig, "message too big")
          return
        }
        // The ArrayBuffer is only valid during this callback: copy before anything else sees it.
        socketHandler?.onMessage(connection, new Uint8Array(message.slice(0)))
      },
      drain: (ws) => ws.getUserData().connection?.flush(),
      close: (ws) => {
        const connection = ws.getUserData().connection
        if (connection === undefined) return
        connection.markClosed()
        connections.delete(connection.id)
        settle(connection.id)
        socketHandler?.onClose(connection)
        Effect.runSync(PubSub.publish(closedClients, connection.id))
      }
    })

    app.any(
      "/*",
      makeHttpDispatcher({ routes, runtime, maxBodyBytes: maxMessageBytes, isShuttingDown: () => shuttingDown })
    )

    const listenSocket = yield* Effect.async<us_listen_socket, UwsListenError>((resume) => {
      // Exclusive: without it uWS sets SO_REUSEPORT and a second server on the same port silently shares it.
      // (The binding takes host, port, options, callback; its typings only list the shorter forms.)
      const listen = app.listen as unknown as (
        host: string,
        port: number,
        options: number,
        cb: (socket: us_listen_socket | false) => void
      ) => void
      listen.call(app, options.host, options.port, LISTEN_EXCLUSIVE_PORT, (socket) => {
        resume(
          socket === false
            ? Effect.fail(new UwsListenError({ reason: "ListenFailed", message: "could not listen on host and port" }))
            : Effect.succeed(socket)
        )
      })
    })

    // Shutdown: refuse new work, stop listening, close every WebSocket with 1001, then drop what is left
    // (keep-alive HTTP connections) so the process can exit.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        shuttingDown = true
        closeListenSocket(listenSocket)
        for (const connection of Array.from(connections.values())) {
          connection.close(CloseCode.GoingAway, "server shutting down")
        }
        pendingFlush = []
        for (const timer of pending.values()) clearTimeout(timer)
        pending.clear()
        app.close()
      })
    )

    return {
      port: localPort(listenSocket),
      addRoute: (method, path, handler) => Effect.sync(() => routes.add(method, path, handler)),
      closeClient: (clientId, code, reason) =>
        isSendableCloseCode(code)
          ? Effect.sync(() => connections.get(clientId)?.close(code, truncateReason(reason)))
          : Effect.dieMessage(`not a sendable WebSocket close code: ${code}`),
      admit: (clientId) => Effect.sync(() => settle(clientId)),
      remoteAddressOf: (clientId) => connections.get(clientId)?.remoteAddress,
      disconnects: Stream.fromPubSub(closedClients),
      subscribeDisconnects: PubSub.subscribe(closedClients),
      connectionCount: Effect.sync(() => connections.size),
      connection: (clientId) => connections.get(clientId),
      attachSocketHandler: (handler) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            socketHandler = handler
          }),
          () =>
            Effect.sync(() => {
              if (socketHandler === handler) socketHandler = undefined
            })
        )
    } satisfies UwsServerService
  })

export const layer = (options: UwsServerOptions): Layer.Layer<UwsServer, UwsListenError> =>
  Layer.scoped(UwsServer, make(options))
