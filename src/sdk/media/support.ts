/**
 * Whether this browser lets the SDK encrypt every media frame. The SDK uses Chromium's encoded insertable streams
 * (RTCRtpSender/RTCRtpReceiver createEncodedStreams with `encodedInsertableStreams: true`); without them a call
 * is refused, never made in clear.
 */
import { Effect } from "effect"
import { EncodedTransformUnsupported } from "./errors.js"

export type EncodedTransformSupport = "encoded-streams" | "none"

const hasMethod = (owner: unknown, name: string): boolean => {
  const prototype = (owner as { prototype?: Record<string, unknown> } | undefined)?.prototype
  return typeof prototype?.[name] === "function"
}

export const encodedTransformSupport = (): EncodedTransformSupport => {
  const g = globalThis as Record<string, unknown>
  return typeof g["RTCPeerConnection"] === "function" &&
      hasMethod(g["RTCRtpSender"], "createEncodedStreams") &&
      hasMethod(g["RTCRtpReceiver"], "createEncodedStreams")
    ? "encoded-streams"
    : "none"
}

export const requireEncodedTransform: Effect.Effect<void, EncodedTransformUnsupported> = Effect.suspend(() =>
  encodedTransformSupport() === "none" ? Effect.fail(new EncodedTransformUnsupported()) : Effect.void
)
