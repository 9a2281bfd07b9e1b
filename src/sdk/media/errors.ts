/**
 * Typed failures of a call's media. None carries device labels, addresses, SDP or keys, so an app may log them.
 */
import { Schema } from "effect"

/**
 * This browser cannot hand encoded media frames to the SDK (no RTCRtpSender/RTCRtpReceiver createEncodedStreams),
 * so the frames could not be encrypted end to end. The call is refused before anything is captured or sent.
 */
export class EncodedTransformUnsupported extends Schema.TaggedError<EncodedTransformUnsupported>()(
  "EncodedTransformUnsupported",
  {}
) {
  override get message() {
    return "this browser cannot encrypt media frames end to end; the call is refused"
  }
}

/** Camera or microphone could not be opened; `reason` is the browser's error name (NotAllowedError, ...). */
export class MediaCaptureFailed extends Schema.TaggedError<MediaCaptureFailed>()("MediaCaptureFailed", {
  reason: Schema.String
}) {
  override get message() {
    return `camera or microphone unavailable (${this.reason})`
  }
}

export const MediaFailureReason = Schema.Literal(
  /** ICE found no working path (the relay is the way out). */
  "ice-failed",
  /** The signalling channel failed or ended; nothing more can be negotiated. */
  "signalling",
  /** The peer's offer or answer was refused by the browser. */
  "negotiation",
  /** A sender or receiver could not be put behind SFrame: the call's media is stopped rather than sent in clear. */
  "frame-protection",
  /** The call's relay could not be had (no media worker, no transport): neither path carries the call's media. */
  "relay-unavailable",
  /** The server refused this device the call's relay (not a party of the call, or the call is not accepted). */
  "relay-refused",
  /** The relay was lost during the call and could not be re-created, or its transports failed. */
  "relay-lost",
  /** The peer's media failed for good (it said why over the sealed channel: `peerReason`); this side stopped too. */
  "peer-failed",
  /** This side closed the call's media. */
  "closed"
)
export type MediaFailureReason = typeof MediaFailureReason.Type

/** The call's media did not connect, or is over. */
export class MediaConnectionFailed extends Schema.TaggedError<MediaConnectionFailed>()("MediaConnectionFailed", {
  reason: MediaFailureReason,
  /** With "peer-failed": why the peer's media failed, as the peer said. */
  peerReason: Schema.optional(MediaFailureReason)
}) {
  override get message() {
    return this.peerReason
      ? `the call's media connection failed on the peer's side (${this.peerReason})`
      : `the call's media connection failed (${this.reason})`
  }
}
