/**
 * Loaded into a Chromium page as one device of the product, for the relayed-call tests: the demo's browser device
 * (src/demo/media-device.ts: enroll or activate, sign in once, then calls under a media policy with the call's
 * relay), plus hooks that make the browser refuse encoded frames to script or reach the relay over TCP only (as
 * behind a firewall that drops UDP). Exposed to page.evaluate as `tesseraRelayDevice`.
 */
import { mediaDevice } from "../../src/demo/media-device.js"

export type { CallOptions, CallOutcome } from "../../src/demo/media-device.js"

let original: (() => unknown) | undefined
const peerConnections: Array<RTCPeerConnection> = []
let udpBlocked = false
let udpHookInstalled = false

/** A remote description without its UDP candidates: what is left to reach is the relay's TCP candidate. */
const withoutUdp = (description: RTCSessionDescriptionInit): RTCSessionDescriptionInit => ({
  ...description,
  ...(description.sdp === undefined ? {} : {
    sdp: description.sdp.split("\r\n").filter((line) => !/^a=candidate:\S+ \d+ udp /i.test(line)).join("\r\n")
  })
})

const api = {
  ...mediaDevice,

  /**
   * From now on (until called with false) this page's browser refuses to hand a sender's encoded frames to script:
   * createEncodedStreams throws, as a browser would for a sender it cannot give them for.
   */
  refuseEncodedSenders(on: boolean) {
    const prototype = (globalThis as Record<string, any>)["RTCRtpSender"].prototype
    if (on && !original) {
      original = prototype.createEncodedStreams
      prototype.createEncodedStreams = () => {
        throw new DOMException("encoded streams refused", "InvalidStateError")
      }
    } else if (!on && original) {
      prototype.createEncodedStreams = original
      original = undefined
    }
  },

  /**
   * From now on (until called with false) this page's peer connections see no UDP candidate of the other end (in
   * a remote description or trickled), as behind a firewall that drops UDP: ICE must find the relay's TCP candidate.
   */
  blockUdp(on: boolean) {
    udpBlocked = on
    if (udpHookInstalled) return
    udpHookInstalled = true
    const g = globalThis as Record<string, any>
    const PeerConnection: typeof RTCPeerConnection = g["RTCPeerConnection"]
    g["RTCPeerConnection"] = class extends PeerConnection {
      constructor(configuration?: RTCConfiguration) {
        super(configuration)
        peerConnections.push(this)
      }
      override setRemoteDescription(description: RTCSessionDescriptionInit) {
        return super.setRemoteDescription(udpBlocked ? withoutUdp(description) : description)
      }
      override addIceCandidate(candidate?: RTCIceCandidateInit | null) {
        if (udpBlocked && candidate?.candidate && / udp /i.test(candidate.candidate)) return Promise.resolve()
        return super.addIceCandidate(candidate ?? undefined)
      }
    }
  },

  /** The protocol of the candidate pair in use on each peer connection made since blockUdp was first called, as getStats says. */
  async selectedProtocols(): Promise<Array<string | undefined>> {
    return Promise.all(peerConnections.filter((pc) => pc.connectionState === "connected").map(async (pc) => {
      const report = await pc.getStats()
      const all = [...report.values()] as Array<Record<string, any>>
      const transport = all.find((s) => s["type"] === "transport" && s["selectedCandidatePairId"])
      const pair = transport ? report.get(transport["selectedCandidatePairId"]) : undefined
      return pair ? report.get(pair["remoteCandidateId"])?.protocol : undefined
    }))
  }
}

export type RelayDevicePageApi = typeof api

Object.assign(globalThis, { tesseraRelayDevice: api })
