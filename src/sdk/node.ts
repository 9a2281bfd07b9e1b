/** The SDK in Node: WebSockets from the `ws` package, credentials in a file (mode 0600). */
import { NodeSocket } from "@effect/platform-node"
export * from "./index.js"
export { fileKeyStore } from "./FileKeyStore.js"

/** Provide this to the SDK's effects in Node. */
export const NodeWebSocket = NodeSocket.layerWebSocketConstructor
