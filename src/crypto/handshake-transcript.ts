/**
 * The handshake transcript hash, what each role signs, and the key schedule. TH = SHA-256 over a length-prefixed
 * encoding of every input both sides must agree on; signatures cover a role label and TH; one HKDF-SHA-256
 * expansion of the DH secret, salted with TH, yields the session's key block.
 */
import { concatBytes, utf8Bytes } from "./bytes.js"
import { HANDSHAKE_VERSION } from "./handshake-suites.js"
import { NONCE_BYTES } from "./handshake-wire.js"
import { digest, hkdf } from "./kdf.js"
import { SESSION_KEY_BLOCK_BYTES } from "./session.js"
import { WireWriter } from "./wire.js"

const TRANSCRIPT_LABEL = utf8Bytes("tessera call handshake v1 transcript")
const SIGNATURE_LABEL = {
  caller: utf8Bytes("tessera call handshake v1 caller signature"),
  callee: utf8Bytes("tessera call handshake v1 callee signature")
}
const KEY_SCHEDULE_LABEL = utf8Bytes("tessera call handshake v1 keys")

export interface TranscriptInput {
  readonly callId: string
  readonly callerId: string
  readonly calleeId: string
  readonly callerSpki: Uint8Array
  readonly calleeSpki: Uint8Array
  readonly offeredSuites: ReadonlyArray<number>
  readonly suite: number
  readonly callerNonce: Uint8Array
  readonly calleeNonce: Uint8Array
  readonly callerPublic: Uint8Array
  readonly calleePublic: Uint8Array
}

export const transcriptHash = (t: TranscriptInput): Promise<Uint8Array> => {
  const w = new WireWriter()
    .fixed(TRANSCRIPT_LABEL)
    .u8(HANDSHAKE_VERSION)
    .text8(t.callId)
    .text8(t.callerId)
    .text8(t.calleeId)
    .bytes16(t.callerSpki)
    .bytes16(t.calleeSpki)
    .u8(t.offeredSuites.length)
  for (const s of t.offeredSuites) w.u16(s)
  w.u16(t.suite).fixed(t.callerNonce).fixed(t.calleeNonce).bytes16(t.callerPublic).bytes16(t.calleePublic)
  return digest("SHA-256", w.finish())
}

export const signedContent = (role: "caller" | "callee", th: Uint8Array): Uint8Array => concatBytes(SIGNATURE_LABEL[role], th)

export const keyBlock = async (sharedSecret: Uint8Array, th: Uint8Array): Promise<Uint8Array> => {
  try {
    return await hkdf("SHA-256", sharedSecret, th, KEY_SCHEDULE_LABEL, SESSION_KEY_BLOCK_BYTES)
  } finally {
    sharedSecret.fill(0)
  }
}

export const randomNonce = (): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES))
