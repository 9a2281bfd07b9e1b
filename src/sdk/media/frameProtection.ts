/**
 * SFrame on the encoded frames of one RTCRtpSender or RTCRtpReceiver. Senders encrypt every frame; receivers
 * decrypt, and drop every frame that does not open (unknown key, forged, replayed): fail closed, never plaintext.
 *
 * A VP8 frame keeps its first bytes readable (RFC 6386, 9.1: the 3-byte frame tag, and for a key frame the start
 * code and dimensions, 10 bytes): the browser's packetizer and depacketizer, and later the relay, read them to tell
 * key frames from delta frames. They are authenticated with the frame as SFrame metadata, together with the media
 * kind, so they cannot be altered and an audio frame cannot be passed off as video.
 *
 * What seals and opens is structural: a call's SFrameSender/SFrameReceiver and a conference's ConferenceSender/
 * ConferenceReceiver alike. A receiver may be told the key id of every frame that opened (the key id is in the
 * authenticated SFrame header, so it names the frame's real sender) and may refuse the frame then.
 */
import { ReplayedFrame } from "../../crypto/errors.js"
import { decodeSFrameHeader } from "../../crypto/sframe.js"

export type MediaKind = "audio" | "video"

export interface FrameCounts {
  /** Frames encrypted and handed on (senders) or decrypted and handed on (receivers). */
  protected: number
  /** Frames dropped: encryption failed (keys destroyed), or the frame did not decrypt or authenticate. */
  dropped: number
  /**
   * Frames dropped as duplicates of one already handed on (SFrame replay protection). Chromium hands a receiver
   * the same frame again now and then, e.g. when a retransmission completes it a second time: harmless.
   */
  replayed: number
}

/** Encrypts frames: SFrameSender, ConferenceSender. */
export interface FrameSealer {
  readonly encrypt: (frame: Uint8Array, metadata: Uint8Array) => Promise<Uint8Array>
}

/** Decrypts frames, rejecting every frame that does not open: SFrameReceiver, ConferenceReceiver. */
export interface FrameOpener {
  readonly decrypt: (frame: Uint8Array, metadata: Uint8Array) => Promise<Uint8Array>
}

/** Told the key id of each frame that opened; false drops the frame (counted as dropped). */
export type OpenedFrameCheck = (keyId: bigint) => boolean

/** An opened frame that its receiver's check refused. */
class FrameRefused extends Error {}

type EncodedFrame = RTCEncodedAudioFrame | RTCEncodedVideoFrame

interface EncodedStreams {
  readonly readable: ReadableStream<EncodedFrame>
  readonly writable: WritableStream<EncodedFrame>
}

const VP8_KEY_FRAME_CLEAR = 10
const VP8_DELTA_FRAME_CLEAR = 3
const KIND_LABEL: Record<MediaKind, number> = { audio: 0x61, video: 0x76 }

const clearBytes = (kind: MediaKind, frame: EncodedFrame): number => {
  if (kind === "audio") return 0
  const video = frame as RTCEncodedVideoFrame
  const mimeType = video.getMetadata().mimeType
  if (mimeType !== undefined && mimeType.toLowerCase() !== "video/vp8") return 0
  return video.type === "key" ? VP8_KEY_FRAME_CLEAR : video.type === "delta" ? VP8_DELTA_FRAME_CLEAR : 0
}

const metadata = (kind: MediaKind, clear: Uint8Array): Uint8Array => {
  const out = new Uint8Array(1 + clear.length)
  out[0] = KIND_LABEL[kind]
  out.set(clear, 1)
  return out
}

const joined = (clear: Uint8Array, rest: Uint8Array): ArrayBuffer => {
  const out = new Uint8Array(clear.length + rest.length)
  out.set(clear)
  out.set(rest, clear.length)
  return out.buffer
}

export const sealFrame = async (sender: FrameSealer, kind: MediaKind, frame: EncodedFrame): Promise<ArrayBuffer> => {
  const data = new Uint8Array(frame.data)
  const n = Math.min(clearBytes(kind, frame), data.length)
  const clear = data.slice(0, n)
  return joined(clear, await sender.encrypt(data.slice(n), metadata(kind, clear)))
}

export const openFrame = async (
  receiver: FrameOpener,
  kind: MediaKind,
  frame: EncodedFrame,
  check?: OpenedFrameCheck
): Promise<ArrayBuffer> => {
  const data = new Uint8Array(frame.data)
  const n = clearBytes(kind, frame)
  if (data.length < n) throw new RangeError("frame shorter than its clear header")
  const clear = data.slice(0, n)
  const sealed = data.slice(n)
  const opened = await receiver.decrypt(sealed, metadata(kind, clear))
  if (check && !check(decodeSFrameHeader(sealed).kid)) throw new FrameRefused()
  return joined(clear, opened)
}

const pipeThrough = (
  streams: EncodedStreams,
  transform: (frame: EncodedFrame) => Promise<ArrayBuffer>,
  counts: FrameCounts
): void => {
  streams.readable
    .pipeThrough(
      new TransformStream<EncodedFrame, EncodedFrame>({
        transform: async (frame, controller) => {
          let data: ArrayBuffer
          try {
            data = await transform(frame)
          } catch (e) {
            if (e instanceof ReplayedFrame) counts.replayed++
            else counts.dropped++
            return
          }
          frame.data = data
          controller.enqueue(frame)
          counts.protected++
        }
      })
    )
    // The pipe ends with an error when the peer connection closes; nothing is left to protect then.
    .pipeTo(streams.writable)
    .catch(() => undefined)
}

const encodedStreamsOf = (endpoint: RTCRtpSender | RTCRtpReceiver): EncodedStreams =>
  (endpoint as unknown as { createEncodedStreams(): EncodedStreams }).createEncodedStreams()

/** Puts a sender behind SFrame. Throws when the browser refuses (then nothing may be sent on it). */
export const protectSender = (sender: RTCRtpSender, kind: MediaKind, sealer: FrameSealer, counts: FrameCounts): void =>
  pipeThrough(encodedStreamsOf(sender), (frame) => sealFrame(sealer, kind, frame), counts)

/**
 * Puts a receiver behind SFrame; `check`, when given, sees the key id of every frame that opened. Throws when the
 * browser refuses (then nothing may be played from it).
 */
export const protectReceiver = (
  receiver: RTCRtpReceiver,
  kind: MediaKind,
  opener: FrameOpener,
  counts: FrameCounts,
  check?: OpenedFrameCheck
): void => pipeThrough(encodedStreamsOf(receiver), (frame) => openFrame(opener, kind, frame, check), counts)
