/**
 * Handshake messages on the wire: version byte, type byte, call id (8-bit length, UTF-8), then per type
 *   Offer   nonce (32) | suite count (8) | (suite (16) | key share (16-bit length))*
 *   Answer  suite (16) | count (8) | offered suites as received (16 each) | nonce (32) | key share | signature
 *   Confirm signature (16-bit length)
 * Decoded strictly: wrong lengths, duplicates, unknown types or versions and trailing bytes are MalformedMessage.
 */
import { MalformedMessage, UnexpectedMessage, WrongCallId } from "./errors.js"
import { HANDSHAKE_VERSION, suiteById } from "./handshake-suites.js"
import { WireReader, WireWriter } from "./wire.js"

export const NONCE_BYTES = 32
const MAX_SUITES = 16
const TYPE = { offer: 1, answer: 2, confirm: 3 } as const
export type MessageType = keyof typeof TYPE
const TYPE_NAME: Record<number, MessageType> = { 1: "offer", 2: "answer", 3: "confirm" }

export interface Offer {
  readonly callId: string
  readonly nonce: Uint8Array
  readonly shares: ReadonlyArray<{ readonly suite: number; readonly publicValue: Uint8Array }>
}

export interface Answer {
  readonly callId: string
  readonly suite: number
  readonly offeredSuites: ReadonlyArray<number>
  readonly nonce: Uint8Array
  readonly publicValue: Uint8Array
  readonly signature: Uint8Array
}

export interface Confirm {
  readonly callId: string
  readonly signature: Uint8Array
}

const header = (type: MessageType, callId: string): WireWriter =>
  new WireWriter().u8(HANDSHAKE_VERSION).u8(TYPE[type]).text8(callId)

export const encodeOffer = (m: Offer): Uint8Array => {
  const w = header("offer", m.callId).fixed(m.nonce).u8(m.shares.length)
  for (const s of m.shares) w.u16(s.suite).bytes16(s.publicValue)
  return w.finish()
}

export const encodeAnswer = (m: Answer): Uint8Array => {
  const w = header("answer", m.callId).u16(m.suite).u8(m.offeredSuites.length)
  for (const s of m.offeredSuites) w.u16(s)
  return w.fixed(m.nonce).bytes16(m.publicValue).bytes16(m.signature).finish()
}

export const encodeConfirm = (m: Confirm): Uint8Array => header("confirm", m.callId).bytes16(m.signature).finish()

const readHeader = (bytes: Uint8Array): { readonly reader: WireReader; readonly type: MessageType; readonly callId: string } => {
  if (!(bytes instanceof Uint8Array)) throw new MalformedMessage({ reason: "not bytes" })
  const reader = new WireReader(bytes)
  const version = reader.u8("version")
  if (version !== HANDSHAKE_VERSION) throw new MalformedMessage({ reason: "unsupported version" })
  const type = TYPE_NAME[reader.u8("message type")]
  if (!type) throw new MalformedMessage({ reason: "unknown message type" })
  return { reader, type, callId: reader.text8("call id") }
}

const readSuiteCount = (reader: WireReader): number => {
  const n = reader.u8("suite count")
  if (n === 0 || n > MAX_SUITES) throw new MalformedMessage({ reason: "suite count out of range" })
  return n
}

export const decodeOfferBody = (reader: WireReader, callId: string): Offer => {
  const nonce = reader.fixed(NONCE_BYTES, "nonce")
  const count = readSuiteCount(reader)
  const shares: Array<{ suite: number; publicValue: Uint8Array }> = []
  for (let i = 0; i < count; i++) {
    const suite = reader.u16("suite")
    const publicValue = reader.bytes16("key share")
    if (shares.some((s) => s.suite === suite)) throw new MalformedMessage({ reason: "duplicate suite" })
    const known = suiteById(suite)
    if (known && publicValue.length !== known.group.byteLength) throw new MalformedMessage({ reason: "key share length" })
    shares.push({ suite, publicValue })
  }
  reader.end()
  return { callId, nonce, shares }
}

export const decodeAnswerBody = (reader: WireReader, callId: string): Answer => {
  const suite = reader.u16("suite")
  const count = readSuiteCount(reader)
  const offeredSuites: Array<number> = []
  for (let i = 0; i < count; i++) {
    const s = reader.u16("offered suite")
    if (offeredSuites.includes(s)) throw new MalformedMessage({ reason: "duplicate suite" })
    offeredSuites.push(s)
  }
  const nonce = reader.fixed(NONCE_BYTES, "nonce")
  const publicValue = reader.bytes16("key share")
  const signature = reader.bytes16("signature")
  if (signature.length === 0) throw new MalformedMessage({ reason: "empty signature" })
  reader.end()
  return { callId, suite, offeredSuites, nonce, publicValue, signature }
}

export const decodeConfirmBody = (reader: WireReader, callId: string): Confirm => {
  const signature = reader.bytes16("signature")
  if (signature.length === 0) throw new MalformedMessage({ reason: "empty signature" })
  reader.end()
  return { callId, signature }
}

/**
 * What kind of handshake message these bytes are and which call they belong to, without processing them: for
 * routing an incoming message to the right state. Rejects with MalformedMessage.
 */
export const inspectHandshakeMessage = (bytes: Uint8Array): { readonly type: MessageType; readonly callId: string } => {
  const { type, callId } = readHeader(bytes)
  return { type, callId }
}

/** Decodes a message this state expects, in the order: well-formed, right type, right call. */
export const expectMessage = <A>(
  bytes: Uint8Array,
  expected: MessageType,
  callId: string,
  body: (reader: WireReader, callId: string) => A
): A => {
  const h = readHeader(bytes)
  if (h.type !== expected) throw new UnexpectedMessage({ expected, received: h.type })
  const message = body(h.reader, h.callId)
  if (h.callId !== callId) throw new WrongCallId()
  return message
}
