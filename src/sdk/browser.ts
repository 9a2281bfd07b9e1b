/** The SDK in the browser: the page's own WebSocket. (IndexedDB key storage comes with the web apps.) */
import { Socket } from "@effect/platform"
export * from "./index.js"

/** Provide this to the SDK's effects in a browser. */
export const BrowserWebSocket = Socket.layerWebSocketConstructorGlobal
export * from "./media/index.js"
