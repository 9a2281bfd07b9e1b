/** The bundle the media demo loads into each Chromium page: the device, as `tesseraMediaDevice` for page.evaluate. */
import { mediaDevice } from "./media-device.js"

Object.assign(globalThis, { tesseraMediaDevice: mediaDevice })
