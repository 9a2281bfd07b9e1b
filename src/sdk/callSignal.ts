/**
 * The framing of `call.signal` payloads between two SDKs: one frame-type byte, then
 *   hello    key fingerprint (32)                        callee -> caller, right after accepting
 *   offer    key fingerprint (32) | handshake Offer      caller -> callee
 *   answer   handshake Answer                            callee -> caller
 *   confirm  handshake Confirm                           caller -> callee
 *   sealed   signalling record (CallSession.seal)        both ways, after the handshake
 * The fingerprint (SHA-256 of the sender's identity SPKI) only says which of the peer's trusted keys to verify
 * against, since a host may have several devices; it is not trusted itself: a wrong one fails the handshake.
 */
import { fromHex, toHex } from "../crypto/bytes.js"

const FINGERPRINT_BYTES = 32
const TYPE = { hello: 1, offer: 2, answer: 3, confirm: 4, sealed: 5 } as const

export type CallSignal =
  | { readonly type: "hello"; readonly fingerprint: string }
  | { readonly type: "offer"; readonly fingerprint: string; readonly message: Uint8Array }
  | { readonly type: "answer"; readonly message: Uint8Array }
  | { readonly type: "confirm"; readonly message: Uint8Array }
  | { readonly type: "sealed"; readonly record: Uint8Array }

export type CallSignalType = CallSignal["type"]

/** Frame-type byte plus the signalling record's version, sequence number and GCM tag. */
export const SEALED_OVERHEAD_BYTES = 1 + 9 + 16

const frame = (type: CallSignalType, ...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0))
  out[0] = TYPE[type]
  let offset = 1
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

export const encodeCallSignal = (signal: CallSignal): Uint8Array => {
  switch (signal.type) {
    case "hello":
      return frame("hello", fromHex(signal.fingerprint))
    case "offer":
      return frame("offer", fromHex(signal.fingerprint), signal.message)
    case "answer":
      return frame("answer", signal.message)
    case "confirm":
      return frame("confirm", signal.message)
    case "sealed":
      return frame("sealed", signal.record)
  }
}

/**
 * Undefined for anything that is not a frame of this protocol; the contents are checked by their own decoders.
 * The parts are copies (a relayed payload may be a Buffer view into the connection's read buffer).
 */
export const decodeCallSignal = (bytes: Uint8Array): CallSignal | undefined => {
  const body = bytes.subarray(1)
  switch (bytes[0]) {
    case TYPE.hello:
      return body.length === FINGERPRINT_BYTES ? { type: "hello", fingerprint: toHex(body) } : undefined
    case TYPE.offer:
      return body.length > FINGERPRINT_BYTES
        ? { type: "offer", fingerprint: toHex(body.subarray(0, FINGERPRINT_BYTES)), message: new Uint8Array(body.subarray(FINGERPRINT_BYTES)) }
        : undefined
    case TYPE.answer:
      return body.length > 0 ? { type: "answer", message: new Uint8Array(body) } : undefined
    case TYPE.confirm:
      return body.length > 0 ? { type: "confirm", message: new Uint8Array(body) } : undefined
    case TYPE.sealed:
      return body.length > 0 ? { type: "sealed", record: new Uint8Array(body) } : undefined
    default:
      return undefined
  }
}
