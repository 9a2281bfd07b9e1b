/**
 * Real WebRTC peers in Node (werift) that talk to the relay's mediasoup WebRtcTransports through the parameters the
 * relay RPCs hand out, as a browser does with mediasoup-client: the mediasoup side of each SDP exchange is written
 * here from the transport's ICE and DTLS parameters (ice-lite, one bundled transport per direction), and the RTP
 * parameters for `relay.produce` are read back from the peer. Media is raw RTP: the tests put SFrame frames in the
 * payloads themselves.
 */
import { randomInt } from "node:crypto"
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket } from "werift"

export interface TransportParameters {
  readonly id: string
  readonly iceParameters: { readonly usernameFragment: string; readonly password: string }
  readonly iceCandidates: ReadonlyArray<{
    readonly foundation: string
    readonly priority: number
    readonly address: string
    readonly protocol: "udp" | "tcp"
    readonly port: number
    readonly tcpType?: "passive" | undefined
  }>
  readonly dtlsParameters: { readonly fingerprints: ReadonlyArray<{ readonly algorithm: string; readonly value: string }> }
}

export interface DtlsParameters {
  readonly role: "client" | "server"
  readonly fingerprints: ReadonlyArray<{ readonly algorithm: "sha-256"; readonly value: string }>
}

export type Kind = "audio" | "video"

export interface ConsumerParameters {
  readonly id: string
  readonly producerId: string
  readonly kind: Kind
  readonly rtpParameters: {
    readonly mid?: string | undefined
    readonly codecs: ReadonlyArray<{
      readonly mimeType: string
      readonly payloadType: number
      readonly clockRate: number
      readonly channels?: number | undefined
    }>
    readonly encodings?: ReadonlyArray<{ readonly ssrc?: number | undefined }> | undefined
    readonly rtcp?: { readonly cname?: string | undefined } | undefined
  }
}

const CODECS = {
  audio: { mimeType: "audio/opus", clockRate: 48000, channels: 2, payloadType: 111 },
  video: { mimeType: "video/VP8", clockRate: 90000, payloadType: 96 }
} as const

const newPeer = () =>
  new RTCPeerConnection({
    codecs: {
      audio: [new RTCRtpCodecParameters({ ...CODECS.audio })],
      video: [new RTCRtpCodecParameters({ ...CODECS.video })]
    },
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false
  })

const rtpmap = (codec: { mimeType: string; payloadType: number; clockRate: number; channels?: number | undefined }) =>
  `a=rtpmap:${codec.payloadType} ${codec.mimeType.split("/")[1]}/${codec.clockRate}${codec.channels ? `/${codec.channels}` : ""}`

/** The session part and ICE/DTLS lines of the relay's side, from the transport parameters. */
const relaySession = (mids: ReadonlyArray<string>) => [
  "v=0",
  `o=- ${randomInt(1, 2 ** 31)} 1 IN IP4 127.0.0.1`,
  "s=-",
  "t=0 0",
  "a=ice-lite",
  `a=group:BUNDLE ${mids.join(" ")}`,
  "a=msid-semantic: WMS *"
]

const relayTransportLines = (transport: TransportParameters, setup: "actpass" | "passive") => {
  const sha256 = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === "sha-256")
  if (!sha256) throw new Error("relay transport has no sha-256 fingerprint")
  return [
    "c=IN IP4 127.0.0.1",
    `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
    `a=ice-pwd:${transport.iceParameters.password}`,
    `a=fingerprint:sha-256 ${sha256.value}`,
    `a=setup:${setup}`,
    "a=rtcp-mux",
    ...transport.iceCandidates.map((c) =>
      `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ host${
        c.protocol === "tcp" ? ` tcptype ${c.tcpType ?? "passive"}` : ""
      }`
    ),
    "a=end-of-candidates"
  ]
}

/** Our DTLS fingerprint and role as the relay needs them for relay.connectTransport. */
const localDtls = (sdp: string, setup: "active" | "passive"): DtlsParameters => {
  const match = /a=fingerprint:sha-256 ([0-9A-Fa-f:]+)/.exec(sdp)
  if (!match) throw new Error("werift offered no sha-256 fingerprint")
  return { role: setup === "active" ? "client" : "server", fingerprints: [{ algorithm: "sha-256", value: match[1]! }] }
}

const waitConnected = (pc: RTCPeerConnection, timeoutMs: number) =>
  new Promise<void>((resolve, reject) => {
    if (pc.connectionState === "connected") return resolve()
    const timer = setTimeout(() => reject(new Error(`peer not connected after ${timeoutMs} ms (${pc.connectionState})`)), timeoutMs)
    const { unSubscribe } = pc.connectionStateChange.subscribe((state) => {
      if (state === "connected") {
        clearTimeout(timer)
        unSubscribe()
        resolve()
      } else if (state === "failed" || state === "closed") {
        clearTimeout(timer)
        unSubscribe()
        reject(new Error(`peer connection ${state}`))
      }
    })
  })

/** Sends one track of raw RTP to the relay's send transport. */
export class RelaySender {
  private sequenceNumber = randomInt(0, 0x10000)
  private timestamp = randomInt(0, 2 ** 32)

  private constructor(
    private readonly pc: RTCPeerConnection,
    private readonly track: MediaStreamTrack,
    readonly kind: Kind,
    /** For relay.connectTransport("send"). */
    readonly dtlsParameters: DtlsParameters,
    /** For relay.produce. */
    readonly rtpParameters: {
      readonly mid: string
      readonly codecs: ReadonlyArray<{ mimeType: string; payloadType: number; clockRate: number; channels?: number }>
      readonly encodings: ReadonlyArray<{ ssrc: number }>
      readonly rtcp: { cname: string; reducedSize: boolean }
    },
    private readonly answer: string
  ) {}

  /** Makes the offer; call `connect` once relay.connectTransport has taken `dtlsParameters`. */
  static async prepare(transport: TransportParameters, kind: Kind): Promise<RelaySender> {
    const pc = newPeer()
    const track = new MediaStreamTrack({ kind })
    const transceiver = pc.addTransceiver(track, { direction: "sendonly" })
    await pc.setLocalDescription(await pc.createOffer())
    const offer = pc.localDescription!.sdp
    const mid = transceiver.mid!
    const codec = CODECS[kind]
    const answer = [
      ...relaySession([mid]),
      `m=${kind} 7 UDP/TLS/RTP/SAVPF ${codec.payloadType}`,
      ...relayTransportLines(transport, "passive"),
      `a=mid:${mid}`,
      "a=recvonly",
      rtpmap(codec),
      ""
    ].join("\r\n")
    return new RelaySender(pc, track, kind, localDtls(offer, "active"), {
      mid,
      codecs: [{ ...codec }],
      encodings: [{ ssrc: transceiver.sender.ssrc }],
      rtcp: { cname: pc.cname, reducedSize: true }
    }, answer)
  }

  /** Applies the relay's answer and waits for ICE and DTLS. */
  async connect(timeoutMs = 10_000): Promise<void> {
    await this.pc.setRemoteDescription({ type: "answer", sdp: this.answer })
    await waitConnected(this.pc, timeoutMs)
  }

  /** One RTP packet carrying `payload` (a whole frame, e.g. an SFrame ciphertext). */
  send(payload: Uint8Array): void {
    this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff
    this.timestamp = (this.timestamp + (this.kind === "audio" ? 960 : 3000)) >>> 0
    const header = new RtpHeader({
      payloadType: CODECS[this.kind].payloadType,
      sequenceNumber: this.sequenceNumber,
      timestamp: this.timestamp,
      marker: true
    })
    this.track.writeRtp(new RtpPacket(header, Buffer.from(payload)))
  }

  close(): Promise<void> {
    return this.pc.close()
  }
}

/** Receives the relay's consumers on its receive transport; RTP payloads per consumer id. */
export class RelayReceiver {
  private constructor(
    private readonly pc: RTCPeerConnection,
    /** For relay.connectTransport("receive"). */
    readonly dtlsParameters: DtlsParameters,
    private readonly listeners: Set<(consumerId: string, payload: Uint8Array) => void>
  ) {}

  static async prepare(transport: TransportParameters, consumers: ReadonlyArray<ConsumerParameters>): Promise<RelayReceiver> {
    const pc = newPeer()
    const mids = consumers.map((c) => c.rtpParameters.mid!)
    const sections = consumers.flatMap((consumer) => {
      const codec = consumer.rtpParameters.codecs[0]!
      const ssrc = consumer.rtpParameters.encodings![0]!.ssrc!
      const cname = consumer.rtpParameters.rtcp?.cname ?? "relay"
      return [
        `m=${consumer.kind} 7 UDP/TLS/RTP/SAVPF ${codec.payloadType}`,
        ...relayTransportLines(transport, "actpass"),
        `a=mid:${consumer.rtpParameters.mid}`,
        "a=sendonly",
        `a=msid:relay-${consumer.producerId} ${consumer.id}`,
        rtpmap(codec),
        `a=ssrc:${ssrc} cname:${cname}`,
        `a=ssrc:${ssrc} msid:relay-${consumer.producerId} ${consumer.id}`
      ]
    })
    const offer = [...relaySession(mids), ...sections, ""].join("\r\n")
    const listeners = new Set<(consumerId: string, payload: Uint8Array) => void>()
    const byMid = new Map(consumers.map((c) => [c.rtpParameters.mid!, c.id]))
    // Tracks appear while the offer is applied: listen first.
    pc.onTrack.subscribe((track) => {
      const transceiver = pc.getTransceivers().find((t) => t.receiver.tracks.includes(track))
      const consumerId = byMid.get(transceiver?.mid ?? "")
      if (consumerId === undefined) return
      track.onReceiveRtp.subscribe((rtp) => {
        for (const listener of listeners) listener(consumerId, new Uint8Array(rtp.payload))
      })
    })
    await pc.setRemoteDescription({ type: "offer", sdp: offer })
    await pc.setLocalDescription(await pc.createAnswer())
    const answer = pc.localDescription!.sdp
    const setup = /a=setup:(active|passive)/.exec(answer)?.[1] as "active" | "passive" | undefined
    if (!setup) throw new Error("werift answered without a DTLS role")
    return new RelayReceiver(pc, localDtls(answer, setup), listeners)
  }

  connect(timeoutMs = 10_000): Promise<void> {
    return waitConnected(this.pc, timeoutMs)
  }

  /** Every payload received from now on, per consumer id. */
  onPayload(listener: (consumerId: string, payload: Uint8Array) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  close(): Promise<void> {
    return this.pc.close()
  }
}
