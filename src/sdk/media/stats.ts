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
  /** The path the media take now: peer to peer, or through the server's relay. */
  readonly mode: "p2p" | "relay"
  /** What was asked for: "auto" tries peer to peer first and falls back to the relay. */
  readonly policy: "auto" | "p2p" | "relay"
  /** Why an "auto" call went to the relay: no connection in time, ICE failed, or the peer asked for it. */
  readonly fellBackBecause?: "timeout" | "ice-failed" | "peer"
  readonly sframeSuite: number
  readonly connectionState: RTCPeerConnectionState
  /** Peer to peer: offers and answers this side has made (the first negotiation, then one per ICE restart). */
  readonly negotiations: number
  /** Peer to peer: ICE restarts completed on this side (the peer's ICE credentials changed). */
  readonly iceRestarts: number
  /** Relay: times this side joined the call's relay (once, plus once per relay restart), and the restarts. */
  readonly relayJoins: number
  readonly relayRestarts: number
  /** Relay: ICE restarts completed on this side (both transports given fresh ICE credentials, e.g. after a network change). */
  readonly relayIceRestarts: number
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

/** Sums the inbound-rtp and outbound-rtp entries of stats reports per media kind. */
export const rtpFigures = (reports: Iterable<RTCStatsReport>): Readonly<Record<MediaKind, RtpFigures>> => {
  const figures = { audio: empty(), video: empty() }
  for (const report of reports) report.forEach((entry: Record<string, unknown>) => {
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

/** Figures of paths or sessions that are closed, plus those of the open one: counts that never go back. */
export const addFigures = (
  a: Readonly<Record<MediaKind, RtpFigures>>,
  b: Readonly<Record<MediaKind, RtpFigures>>
): Readonly<Record<MediaKind, RtpFigures>> => {
  const sum = (x: RtpFigures, y: RtpFigures): RtpFigures => ({
    packetsSent: x.packetsSent + y.packetsSent,
    framesEncoded: x.framesEncoded + y.framesEncoded,
    packetsReceived: x.packetsReceived + y.packetsReceived,
    framesReceived: x.framesReceived + y.framesReceived,
    framesDecoded: x.framesDecoded + y.framesDecoded,
    totalAudioEnergy: x.totalAudioEnergy + y.totalAudioEnergy
  })
  return { audio: sum(a.audio, b.audio), video: sum(a.video, b.video) }
}

export const noFigures = (): Readonly<Record<MediaKind, RtpFigures>> => ({ audio: empty(), video: empty() })
