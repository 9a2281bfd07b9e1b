/**
 * The receiving side of a werift peer in a conference's relay room. Unlike a two-party call, the tracks to receive
 * change while the peer is connected (a participant joins late, another leaves): the relay's side offers one more
 * m-section per new consumer on the same receive transport and werift answers again, as mediasoup-client does in a
 * browser. Sending uses relay-peer.ts's RelaySender unchanged.
 */
import { randomInt } from "node:crypto"
import { RTCPeerConnection, RTCRtpCodecParameters } from "werift"
import type { ConsumerParameters, DtlsParameters, TransportParameters } from "./relay-peer.js"

const newPeer = () =>
  new RTCPeerConnection({
    codecs: {
      audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2, payloadType: 111 })],
      video: [new RTCRtpCodecParameters({ mimeType: "video/VP8", clockRate: 90000, payloadType: 96 })]
    },
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false
  })

/** The relay's offer for all consumers so far: ice-lite, one bundled transport, one sendonly m-section each. */
const relayOffer = (transport: TransportParameters, consumers: ReadonlyArray<ConsumerParameters>, session: number, version: number) => {
  const sha256 = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === "sha-256")
  if (!sha256) throw new Error("relay transport has no sha-256 fingerprint")
  const transportLines = [
    "c=IN IP4 127.0.0.1",
    `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
    `a=ice-pwd:${transport.iceParameters.password}`,
    `a=fingerprint:sha-256 ${sha256.value}`,
    "a=setup:actpass",
    "a=rtcp-mux",
    ...transport.iceCandidates.map((c) =>
      `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ host${
        c.protocol === "tcp" ? ` tcptype ${c.tcpType ?? "passive"}` : ""
      }`
    ),
    "a=end-of-candidates"
  ]
  const sections = consumers.flatMap((consumer) => {
    const codec = consumer.rtpParameters.codecs[0]!
    const ssrc = consumer.rtpParameters.encodings![0]!.ssrc!
    const cname = consumer.rtpParameters.rtcp?.cname ?? "relay"
    const msid = `relay-${consumer.producerId} ${consumer.id}`
    return [
      `m=${consumer.kind} 7 UDP/TLS/RTP/SAVPF ${codec.payloadType}`,
      ...transportLines,
      `a=mid:${consumer.rtpParameters.mid}`,
      "a=sendonly",
      `a=msid:${msid}`,
      `a=rtpmap:${codec.payloadType} ${codec.mimeType.split("/")[1]}/${codec.clockRate}${codec.channels ? `/${codec.channels}` : ""}`,
      `a=ssrc:${ssrc} cname:${cname}`,
      `a=ssrc:${ssrc} msid:${msid}`
    ]
  })
  return [
    "v=0",
    `o=- ${session} ${version} IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    "a=ice-lite",
    `a=group:BUNDLE ${consumers.map((c) => c.rtpParameters.mid).join(" ")}`,
    "a=msid-semantic: WMS *",
    ...sections,
    ""
  ].join("\r\n")
}

/** Receives the relay's consumers of one participant, adding more while connected; payloads per producer id. */
export class RoomReceiver {
  private readonly consumers: Array<ConsumerParameters> = []
  private readonly producerByMid = new Map<string, string>()
  private readonly listeners = new Set<(producerId: string, payload: Uint8Array) => void>()
  private readonly session = randomInt(1, 2 ** 31)
  private version = 0

  private constructor(private readonly pc: RTCPeerConnection, private readonly transport: TransportParameters) {
    // Tracks appear while an offer is applied: listen first.
    pc.onTrack.subscribe((track) => {
      const transceiver = pc.getTransceivers().find((t) => t.receiver.tracks.includes(track))
      const producerId = this.producerByMid.get(transceiver?.mid ?? "")
      if (producerId === undefined) return
      track.onReceiveRtp.subscribe((rtp) => {
        for (const listener of this.listeners) listener(producerId, new Uint8Array(rtp.payload))
      })
    })
  }

  /** Answers the first offer; `dtlsParameters` go to relay.connectTransport("receive"), then `connect`. */
  static async prepare(
    transport: TransportParameters,
    consumers: ReadonlyArray<ConsumerParameters>
  ): Promise<{ readonly receiver: RoomReceiver; readonly dtlsParameters: DtlsParameters }> {
    const receiver = new RoomReceiver(newPeer(), transport)
    const answer = await receiver.negotiate(consumers)
    const setup = /a=setup:(active|passive)/.exec(answer)?.[1]
    const fingerprint = /a=fingerprint:sha-256 ([0-9A-Fa-f:]+)/.exec(answer)?.[1]
    if (!setup || !fingerprint) throw new Error("werift answered without DTLS parameters")
    return {
      receiver,
      dtlsParameters: { role: setup === "active" ? "client" : "server", fingerprints: [{ algorithm: "sha-256", value: fingerprint }] }
    }
  }

  connect(timeoutMs = 10_000): Promise<void> {
    const pc = this.pc
    return new Promise((resolve, reject) => {
      if (pc.connectionState === "connected") return resolve()
      const timer = setTimeout(() => reject(new Error(`receiver not connected after ${timeoutMs} ms`)), timeoutMs)
      const { unSubscribe } = pc.connectionStateChange.subscribe((state) => {
        if (state !== "connected" && state !== "failed" && state !== "closed") return
        clearTimeout(timer)
        unSubscribe()
        if (state === "connected") resolve()
        else reject(new Error(`receiver ${state}`))
      })
    })
  }

  /** Receives further consumers on the connected transport (a new offer from the relay's side, answered). */
  async add(consumers: ReadonlyArray<ConsumerParameters>): Promise<void> {
    await this.negotiate(consumers)
  }

  private async negotiate(added: ReadonlyArray<ConsumerParameters>): Promise<string> {
    for (const consumer of added) {
      this.consumers.push(consumer)
      this.producerByMid.set(consumer.rtpParameters.mid!, consumer.producerId)
    }
    await this.pc.setRemoteDescription({ type: "offer", sdp: relayOffer(this.transport, this.consumers, this.session, ++this.version) })
    await this.pc.setLocalDescription(await this.pc.createAnswer())
    return this.pc.localDescription!.sdp
  }

  /** Every payload received from now on, with the producer it came from. */
  onPayload(listener: (producerId: string, payload: Uint8Array) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  close(): Promise<void> {
    return this.pc.close()
  }
}
