/**
 * The map of the running server, read top to bottom: storage and accounts; the uWebSockets.js transport with the
 * RPC protocol on it; live sessions, presence, calls and conferences in memory, with the relay rooms of both; the
 * RPC handlers of the public contract; the media worker pool; HTTP routes; and the reactions that keep live state
 * in step with accounts and connections.
 */
import { RpcSerialization, RpcServer } from "@effect/rpc"
import { Effect, Layer, Option } from "effect"
import { CallsLive } from "../actors/Calls.js"
import { ConnectionControl, SessionsLive } from "../actors/Sessions.js"
import { CallRelayLive } from "../media/CallRelay.js"
import { ConferenceCallsLive } from "../media/ConferenceCalls.js"
import { Conferences } from "../media/Conferences.js"
import { Rooms } from "../media/Rooms.js"
import { WorkerPool } from "../media/WorkerPool.js"
import { AttemptLimiterLive } from "../rpc/AttemptLimiter.js"
import { ClientAddress } from "../rpc/ClientAddress.js"
import { TesseraRpcs } from "../rpc/contract.js"
import { HandlersLive } from "../rpc/handlers/index.js"
import * as UwsServer from "../rpc/UwsServer.js"
import { AccountsLive } from "./Accounts.js"
import type { ServerSettings } from "./Config.js"
import { HttpRoutesLive } from "./HttpRoutes.js"
import { LiveReactionsLive } from "./LiveReactions.js"

const TransportLive = (settings: ServerSettings) =>
  UwsServer.layerWithProtocol({
    host: settings.host,
    port: settings.port,
    maxMessageBytes: settings.maxMessageBytes,
    admissionDeadlineSeconds: settings.admissionDeadlineSeconds,
    maxPendingConnections: settings.maxPendingConnections,
    ...Option.match(settings.tls, { onNone: () => ({}), onSome: (tls) => ({ tls }) })
  }).pipe(Layer.provide(RpcSerialization.layerMsgPack))

export const ServerLive = (settings: ServerSettings) => {
  const transport = TransportLive(settings)
  // What the live services need from the transport: closing a connection, the address of a client.
  const control = Layer.mergeAll(
    Layer.effect(ConnectionControl, Effect.map(UwsServer.UwsServer, (server) => ({ close: server.closeClient, admit: server.admit }))),
    Layer.effect(ClientAddress, Effect.map(UwsServer.UwsServer, (server) => ({
      of: (clientId: number) => server.remoteAddressOf(clientId) ?? "unknown"
    })))
  )
  // Conferences, in the one set of relay rooms (Rooms.fromEnv is the same layer, so built once, as CallRelayLive's).
  const conferences = Conferences.Default.pipe(Layer.provide(Rooms.fromEnv))
  // The calls as the relay wraps them: a call that ends closes its relay room. Beneath, as conferences wrap them:
  // a call that ends takes its customer out of its conference, and a conference is a relayed call of many parties.
  const live = Layer.merge(
    CallRelayLive.pipe(Layer.provide(ConferenceCallsLive), Layer.provide(conferences)),
    conferences
  ).pipe(Layer.provide(CallsLive), Layer.provideMerge(SessionsLive))
  // No span per request: nothing here traces, and a live.events subscription would keep its span (with its
  // attributes, links and the fiber frames that end it) for the whole life of the connection.
  const rpc = RpcServer.layer(TesseraRpcs, { disableTracing: true }).pipe(Layer.provide(HandlersLive), Layer.provide(AttemptLimiterLive))
  return Layer.mergeAll(rpc, HttpRoutesLive, LiveReactionsLive).pipe(
    Layer.provideMerge(live),
    Layer.provideMerge(control),
    Layer.provideMerge(accountsOnBoundPort(settings)),
    Layer.provideMerge(transport),
    Layer.provideMerge(WorkerPool.fromEnv)
  )
}

/**
 * The accounts, built once the transport is listening: with PORT=0 the config files they sign must carry the port
 * that was bound, not 0. (Until the RPC handlers are attached the transport answers upgrades with 503.)
 */
const accountsOnBoundPort = (settings: ServerSettings) =>
  Layer.unwrapEffect(Effect.map(UwsServer.UwsServer, (server) =>
    AccountsLive(
      settings.port === 0
        ? { ...settings, publicUrl: settings.publicUrl.replace(/:0\/rpc$/, `:${server.port}/rpc`) }
        : settings
    )))
