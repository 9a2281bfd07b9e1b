/**
 * What CallMedia.ts hands a media path (peer to peer, or the relay) and gets back. A path sends the call's local
 * tracks and receives the peer's, every sender and receiver behind the call's SFrame contexts (the guard); it
 * reports its connection state and its end through `events`, and CallMedia decides what follows (the relay after
 * a failed peer-to-peer attempt, or the end of the call's media).
 */
import { Effect, type Scope } from "effect"
import type { MediaFailureReason } from "./errors.js"
import type { MediaKind } from "./frameProtection.js"
import type { RtpFigures } from "./stats.js"

export type MediaMode = "p2p" | "relay"

/** Puts senders and receivers behind the call's SFrame contexts; throws when the browser refuses (fail closed). */
export interface FrameGuard {
  readonly protectSender: (sender: RTCRtpSender, kind: MediaKind) => void
  readonly protectReceiver: (receiver: RTCRtpReceiver, kind: MediaKind) => void
}

export interface PathEvents {
  /** The path's connection state changed (called from browser callbacks). */
  readonly connection: (state: RTCPeerConnectionState) => void
  /** The path failed for good; its resources are released when its scope closes. */
  readonly failed: (reason: MediaFailureReason) => Effect.Effect<void>
}

export interface PathContext {
  readonly guard: FrameGuard
  /** The call's captured tracks; the camera track changes on a camera switch. */
  readonly localStream: MediaStream
  /**
   * Where the path puts the peer's decrypted tracks, and removes them again when they end or it closes: a
   * MediaStream, or whatever else takes them (a conference sorts them by sender).
   */
  readonly remoteStream: Pick<MediaStream, "addTrack" | "removeTrack">
  readonly events: PathEvents
}

export interface MediaPath {
  readonly mode: MediaMode
  /** Sends `track` instead of the current one of its kind, without renegotiation. */
  readonly replaceTrack: (kind: MediaKind, track: MediaStreamTrack) => Effect.Effect<void, unknown>
  /** Figures of the path's RTP, summed per kind. */
  readonly figures: Effect.Effect<Readonly<Record<MediaKind, RtpFigures>>>
}

/**
 * Calls `onChange` whenever the network may have changed under the page (the browser is back online, or
 * `navigator.connection` says the connection changed), for as long as the scope lives; where neither exists
 * (Node, some browsers), never.
 */
export const onNetworkChange = (onChange: () => void): Effect.Effect<void, never, Scope.Scope> => {
  const network = (globalThis.navigator as { connection?: EventTarget } | undefined)?.connection
  return Effect.acquireRelease(
    Effect.sync(() => {
      globalThis.addEventListener?.("online", onChange)
      network?.addEventListener("change", onChange)
    }),
    () =>
      Effect.sync(() => {
        globalThis.removeEventListener?.("online", onChange)
        network?.removeEventListener("change", onChange)
      })
  )
}
