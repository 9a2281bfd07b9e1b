/**
 * What the two peers' media layers say to each other: offers, answers and ICE candidates, the switch to the
 * relay when the peer-to-peer path did not connect, and the end of one side's media when they failed. The channel is pluggable
 * (`send` and `receive`) so that it rides the call's sealed channel (CallSecurity.secureCall): the server then sees
 * neither addresses nor DTLS fingerprints. Incoming messages are decoded here; anything else is dropped and counted.
 */
import { Effect, Schema } from "effect"
import { MediaFailureReason } from "./errors.js"

const Sdp = Schema.String.pipe(Schema.maxLength(40_000))

export const MediaOffer = Schema.TaggedStruct("MediaOffer", { sdp: Sdp })
export const MediaAnswer = Schema.TaggedStruct("MediaAnswer", { sdp: Sdp })
export const MediaIceCandidate = Schema.TaggedStruct("MediaIceCandidate", {
  candidate: Schema.String.pipe(Schema.maxLength(1_000)),
  sdpMid: Schema.NullOr(Schema.String.pipe(Schema.maxLength(64))),
  sdpMLineIndex: Schema.NullOr(Schema.Int.pipe(Schema.between(0, 64))),
  usernameFragment: Schema.NullOr(Schema.String.pipe(Schema.maxLength(256)))
})
/** The callee asks the caller, who makes every offer, for an ICE restart. */
export const MediaIceRestartRequested = Schema.TaggedStruct("MediaIceRestartRequested", {})

/**
 * Either side, once: the peer-to-peer path did not connect in time (or failed), or this side's policy is the relay;
 * both sides leave the peer-to-peer path and join the call's relay. Sticky: there is no way back to peer to peer.
 */
export const MediaUseRelay = Schema.TaggedStruct("MediaUseRelay", {})

/**
 * Either side, once: its media failed for good (a sender it could not put behind SFrame, the relay refused or lost,
 * ...), or it refused the call's media before starting them. The other side ends its media too ("peer-failed"),
 * so that both can tell their users why instead of waiting for frames that will not come.
 */
export const MediaFailed = Schema.TaggedStruct("MediaFailed", { reason: MediaFailureReason })

export const MediaSignal = Schema.Union(MediaOffer, MediaAnswer, MediaIceCandidate, MediaIceRestartRequested, MediaUseRelay, MediaFailed)
export type MediaSignal = typeof MediaSignal.Type

export const decodeMediaSignal = Schema.decodeUnknownOption(MediaSignal)

/**
 * How one call's media messages travel. Messages must arrive in the order they were sent. A failure of `send`
 * or of `receive` ends the call's media (MediaConnectionFailed "signalling").
 */
export interface MediaSignalChannel<SendError = never, ReceiveError = never> {
  readonly send: (message: MediaSignal) => Effect.Effect<void, SendError>
  /** The peer's next message, waiting for it. */
  readonly receive: Effect.Effect<unknown, ReceiveError>
}

const isTagged = (u: unknown, tag: string): boolean =>
  typeof u === "object" && u !== null && (u as { readonly _tag?: unknown })._tag === tag

/**
 * The media channel over a secured call (CallSecurity.secureCall's SecureCall): a relayed payload the call
 * dropped (SignalRejected) is skipped, any other failure (the call ended) ends the media.
 */
export const mediaSignalsOver = <SE, RE>(call: {
  readonly send: (message: MediaSignal) => Effect.Effect<void, SE>
  readonly receive: Effect.Effect<unknown, RE>
}): MediaSignalChannel<SE, RE> => ({
  send: call.send,
  receive: Effect.retry(call.receive, { while: (e) => isTagged(e, "SignalRejected") })
})
