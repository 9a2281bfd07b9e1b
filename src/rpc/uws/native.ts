// The uWebSockets.js binding. The package is CommonJS whose exports are computed at run time, so ESM can only take
// its default export (module.exports); the types come from the package's own declaration file.
import uWS from "@trufflesuite/uws-js-unofficial"
import type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  WebSocket
} from "@trufflesuite/uws-js-unofficial"

export type { HttpRequest, HttpResponse, us_listen_socket, WebSocket }

/** `close()` exists on apps of this release but is missing from its declaration file. */
export interface App extends TemplatedApp {
  close(): void
}

export const makeApp = (tls: { readonly certFile: string; readonly keyFile: string } | undefined): App =>
  (tls === undefined
    ? uWS.App()
    : uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile })) as App

export const closeListenSocket = (socket: us_listen_socket): void => uWS.us_listen_socket_close(socket)

export const localPort = (socket: us_listen_socket): number => uWS.us_socket_local_port(socket as never)

/** `ws.send` results. */
export const SendStatus = { Backpressure: 0, Success: 1, Dropped: 2 } as const
