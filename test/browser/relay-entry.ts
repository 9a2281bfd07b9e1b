/**
 * Loaded into a Chromium page as one device of the product, for the relayed-call tests: the demo's browser device
 * (src/demo/media-device.ts: enroll or activate, sign in once, then calls under a media policy with the call's
 * relay), plus a hook that makes the browser refuse encoded frames to script. Exposed to page.evaluate as
 * `tesseraRelayDevice`.
 */
import { mediaDevice } from "../../src/demo/media-device.js"

export type { CallOptions, CallOutcome } from "../../src/demo/media-device.js"

let original: (() => unknown) | undefined

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
  }
}

export type RelayDevicePageApi = typeof api

Object.assign(globalThis, { tesseraRelayDevice: api })
