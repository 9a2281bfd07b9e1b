/**
 * Test-side reading and writing of handshake messages, written from the format described in handshake.ts, so
 * tests can play the server in the middle: strip suites, swap values, replay and reorder.
 */
import { WireReader, WireWriter } from "../../src/crypto/wire.js"

export interface OfferFields {
  readonly callId: string
  readonly nonce: Uint8Array
  readonly shares: ReadonlyArray<{ readonly suite: number; readonly publicValue: Uint8Array }>
}

export interface AnswerFields {
  readonly callId: string
  readonly suite: number
  readonly offeredSuites: ReadonlyArray<number>
  readonly nonce: Uint8Array
  readonly publicValue: Uint8Array
  readonly signature: Uint8Array
}

export const parseOffer = (bytes: Uint8Array): OfferFields => {
  const r = new WireReader(bytes)
  r.u8("version")
  r.u8("type")
  const callId = r.text8("call id")
  const nonce = r.fixed(32, "nonce")
  const n = r.u8("count")
  const shares = Array.from({ length: n }, () => ({ suite: r.u16("suite"), publicValue: r.bytes16("share") }))
  r.end()
  return { callId, nonce, shares }
}

export const buildOffer = (o: OfferFields): Uint8Array => {
  const w = new WireWriter().u8(1).u8(1).text8(o.callId).fixed(o.nonce).u8(o.shares.length)
  for (const s of o.shares) w.u16(s.suite).bytes16(s.publicValue)
  return w.finish()
}

export const parseAnswer = (bytes: Uint8Array): AnswerFields => {
  const r = new WireReader(bytes)
  r.u8("version")
  r.u8("type")
  const callId = r.text8("call id")
  const suite = r.u16("suite")
  const n = r.u8("count")
  const offeredSuites = Array.from({ length: n }, () => r.u16("suite"))
  const nonce = r.fixed(32, "nonce")
  const publicValue = r.bytes16("share")
  const signature = r.bytes16("signature")
  r.end()
  return { callId, suite, offeredSuites, nonce, publicValue, signature }
}

export const buildAnswer = (a: AnswerFields): Uint8Array => {
  const w = new WireWriter().u8(1).u8(2).text8(a.callId).u16(a.suite).u8(a.offeredSuites.length)
  for (const s of a.offeredSuites) w.u16(s)
  return w.fixed(a.nonce).bytes16(a.publicValue).bytes16(a.signature).finish()
}

export const buildConfirm = (callId: string, signature: Uint8Array): Uint8Array =>
  new WireWriter().u8(1).u8(3).text8(callId).bytes16(signature).finish()
