/**
 * Call media in the browser: peer to peer first, the server's relay when that does not connect (or when policy says
 * so), SFrame on every frame on either path, signalling over the sealed channel. Conference media: the conference's
 * relay room, SFrame under the conference's epoch keys, the others' tracks by sender slot.
 */
export * from "./CallMedia.js"
export * from "./ConferenceMedia.js"
export * from "./errors.js"
export { type FrameCounts, type MediaKind } from "./frameProtection.js"
export * from "./keys.js"
export * from "./signalling.js"
export * from "./stats.js"
export * from "./support.js"
