/** Call media in the browser: peer-to-peer WebRTC with SFrame on every frame, signalling over the sealed channel. */
export * from "./CallMedia.js"
export * from "./errors.js"
export { type FrameCounts, type MediaKind } from "./frameProtection.js"
export * from "./keys.js"
export * from "./signalling.js"
export * from "./stats.js"
export * from "./support.js"
