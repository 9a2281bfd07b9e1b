/** The figures of a call's media that an app shows or a test checks, read from getStats and the SFrame counters. */
import type { FrameCounts, MediaKind } from "./frameProtection.js"

export interface RtpFigures {
  /** Outbound: what this side sent. */
  readonly packetsSent: number
  readonly framesEncoded: number
  /** Inbound: what arrived from the peer, and how many video frames were decoded (after SFrame). */
  readonly packetsReceived: number
  readonly framesReceived: number
  readonly framesDecoded: number
  /** Inbound audio: grows while the peer's audio is heard (0 for video). */
  readonly totalAudioEnergy: number
}

export interface CallMediaStats {
  readonly mode: "p2p"
  readonly sframeSuite: number
  readonly connectionState: RTCPeerConnectionState
  /** Offers and answers this side has made: the initial negotiation, then one per ICE restart, nothing else. */
  readonly negotiations: number
  /** ICE restarts completed on this side (the peer's ICE credentials changed). */
  readonly iceRestarts: number
  readonly muted: Readonly<Record<MediaKind, boolean>>
  readonly audio: RtpFigures
  readonly video: RtpFigures
  /** SFrame per direction and kind: frames protected, frames dropped. */
  readonly sent: Readonly<Record<MediaKind, FrameCounts>>
  readonly received: Readonly<Record<MediaKind, FrameCounts>>
  readonly signals: { readonly sent: number; readonly received: number; readonly rejected: number }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const empty = (): Mutable<RtpFigures> => ({
  packetsSent: 0,
  framesEncoded: 0,
  packetsReceived: 0,
  framesReceived: 0,
  framesDecoded: 0,
  totalAudioEnergy: 0
})

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0)

/** Sums the inbound-rtp and outbound-rtp entries of a stats report per media kind. */
export const rtpFigures = (report: RTCStatsReport): Readonly<Record<MediaKind, RtpFigures>> => {
  const figures = { audio: empty(), video: empty() }
  report.forEach((entry: Record<string, unknown>) => {
    const kind = entry["kind"]
    if (kind !== "audio" && kind !== "video") return
    const f = figures[kind]
    if (entry["type"] === "outbound-rtp") {
      f.packetsSent += num(entry["packetsSent"])
      f.framesEncoded += num(entry["framesEncoded"])
    } else if (entry["type"] === "inbound-rtp") {
      f.packetsReceived += num(entry["packetsReceived"])
      f.framesReceived += num(entry["framesReceived"])
      f.framesDecoded += num(entry["framesDecoded"])
      f.totalAudioEnergy += num(entry["totalAudioEnergy"])
    }
  })
  return figures
}
