// The uWebSockets.js transport: HTTP routes plus the WebSocket endpoint serving RpcServer.Protocol.
//
//   Layer.provideMerge(UwsServer.layerProtocol, UwsServer.layer({ host, port }))
//
// gives both the UwsServer service (routes, closeClient, remote addresses, disconnect notifications) and the
// RpcServer.Protocol that `RpcServer.layer(group)` consumes; it needs an RpcSerialization (tessera: msgPack).
import type * as RpcSerialization from "@effect/rpc/RpcSerialization"
import type * as RpcServer from "@effect/rpc/RpcServer"
import * as Layer from "effect/Layer"
import { layerProtocolWith, type ProtocolOptions } from "./uws/protocol.js"
import { layer, type UwsListenError, type UwsServer, type UwsServerOptions } from "./uws/server.js"

export { CloseCode } from "./uws/Connection.js"
export type { HttpMethod, HttpRouteHandler, HttpRouteRequest, HttpRouteResponse } from "./uws/http.js"
export { DEFAULT_MAX_REQUESTS_IN_FLIGHT, layerProtocol, layerProtocolWith, makeProtocol, type ProtocolOptions } from "./uws/protocol.js"
export {
  layer,
  make,
  type SocketHandler,
  UwsListenError,
  UwsServer,
  type UwsServerOptions,
  type UwsServerService
} from "./uws/server.js"

/** The server and the RPC protocol on it, in one layer. */
export const layerWithProtocol = (
  options: UwsServerOptions & ProtocolOptions
): Layer.Layer<UwsServer | RpcServer.Protocol, UwsListenError, RpcSerialization.RpcSerialization> => {
  const { maxRequestsInFlight, ...serverOptions } = options
  return Layer.provideMerge(
    layerProtocolWith(maxRequestsInFlight === undefined ? {} : { maxRequestsInFlight }),
    layer(serverOptions)
  )
}
