/**
 * The call handshake between two parties in Node, with the test playing the relaying server: honest runs, and every
 * way the server (or anyone on the path) could interfere, each ending in a typed error and no session.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { bigIntToBytes, toHex, utf8Bytes } from "../../src/crypto/bytes.js"
import { isHandshakeError } from "../../src/crypto/errors.js"
import {
  CallerHandshake,
  inspectHandshakeMessage,
  respondToOffer,
  startCallerHandshake,
  type HandshakeParty
} from "../../src/crypto/handshake.js"
import { generateIdentityKeyPair, type IdentityKeyPair } from "../../src/crypto/identity.js"
import { bigintModpBackend } from "../../src/crypto/modp-bigint.js"
import { MODP_GROUP_14, MODP_GROUP_15 } from "../../src/crypto/modp.js"
import type { CallSession } from "../../src/crypto/session.js"
import { buildAnswer, buildConfirm, buildOffer, parseAnswer, parseOffer } from "./handshake-messages.js"

let alice: IdentityKeyPair
let bob: IdentityKeyPair
let mallory: IdentityKeyPair

beforeAll(async () => {
  ;[alice, bob, mallory] = await Promise.all([generateIdentityKeyPair(), generateIdentityKeyPair(), generateIdentityKeyPair()])
})

const CALL = "call-7f3a"

/** Alice calls Bob; each knows the other's key from activation unless a test says otherwise. */
const callerParty = (over: Partial<HandshakeParty> = {}): HandshakeParty => ({
  callId: CALL,
  selfId: "customer-alice",
  selfIdentity: alice,
  peerId: "host-bob",
  peerPublicKeySpki: bob.publicKeySpki,
  ...over
})
const calleeParty = (over: Partial<HandshakeParty> = {}): HandshakeParty => ({
  callId: CALL,
  selfId: "host-bob",
  selfIdentity: bob,
  peerId: "customer-alice",
  peerPublicKeySpki: alice.publicKeySpki,
  ...over
})

const tagOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => (isHandshakeError(e) || isTagged(e) ? e._tag : `untyped ${String(e)}`)
  )

const isTagged = (e: unknown): e is { readonly _tag: string } => e instanceof Error && typeof (e as { _tag?: unknown })._tag === "string"

const run = async (caller: Partial<HandshakeParty> = {}, callee: Partial<HandshakeParty> = {}) => {
  const { offer, state } = await startCallerHandshake(callerParty(caller))
  const { answer, state: calleeState } = await respondToOffer({ ...calleeParty(callee), offer })
  const { confirm, session: callerSession } = await state.receiveAnswer(answer)
  const calleeSession = await calleeState.receiveConfirm(confirm)
  return { offer, answer, confirm, state, calleeState, callerSession, calleeSession }
}

const text = (s: string) => utf8Bytes(s)
const decode = (b: Uint8Array) => new TextDecoder().decode(b)

const expectWorkingPair = async (a: CallSession, b: CallSession) => {
  expect(a.safetyCode).toMatch(/^\d{5}( \d{5}){4}$/)
  expect(b.safetyCode).toBe(a.safetyCode)
  expect(toHex(b.transcriptHash)).toBe(toHex(a.transcriptHash))
  expect(decode(await b.open(await a.seal(text("offer sdp"))))).toBe("offer sdp")
  expect(decode(await a.open(await b.seal(text("answer sdp"))))).toBe("answer sdp")
  expect(toHex(a.sframeSendKey)).toBe(toHex(b.sframeReceiveKey))
  expect(toHex(a.sframeReceiveKey)).toBe(toHex(b.sframeSendKey))
  expect(toHex(a.sframeSendKey)).not.toBe(toHex(a.sframeReceiveKey))
  const [tx, rx] = [await a.createSFrameSender(), await b.createSFrameReceiver()]
  expect(await rx.decrypt(await tx.encrypt(text("frame")))).toEqual(text("frame"))
}

describe("call handshake, honest parties", () => {
  it("agrees on group 15 by default: same safety code, working signalling and SFrame both ways", async () => {
    const r = await run()
    expect(r.callerSession.suiteName).toMatch(/^MODP3072_/)
    expect(r.state.state).toBe("complete")
    expect(r.calleeState.state).toBe("complete")
    expect(inspectHandshakeMessage(r.offer)).toEqual({ type: "offer", callId: CALL })
    expect(parseOffer(r.offer).shares.map((s) => s.suite)).toEqual([1])
    await expectWorkingPair(r.callerSession, r.calleeSession)
  })

  it("uses group 14 only when both opted in; one opt-in alone still gives group 15", async () => {
    const both = await run({ allowCompatibilityGroup14: true }, { allowCompatibilityGroup14: true })
    expect(both.callerSession.suiteName).toMatch(/^MODP3072_/) // group 15 stays preferred
    expect(parseOffer(both.offer).shares.map((s) => [s.suite, s.publicValue.length])).toEqual([[1, 384], [2, 256]])
    const onlyCaller = await run({ allowCompatibilityGroup14: true }, {})
    expect(onlyCaller.callerSession.suiteName).toMatch(/^MODP3072_/)
  })

  it("completes in group 14 when the caller offers only group 14 and both allow it", async () => {
    const { offer, state } = await startCallerHandshake(callerParty({ allowCompatibilityGroup14: true }))
    // A compatibility-only caller: keep the group 14 share alone (its own offer, not an attack, so the echo matches
    // what the test hands the caller state below).
    const fields = parseOffer(offer)
    const only14 = buildOffer({ ...fields, shares: fields.shares.filter((s) => s.suite === 2) })
    const { answer } = await respondToOffer({ ...calleeParty({ allowCompatibilityGroup14: true }), offer: only14 })
    expect(parseAnswer(answer).suite).toBe(2)
    expect(parseAnswer(answer).publicValue).toHaveLength(MODP_GROUP_14.byteLength)
    // The real caller sent [1, 2]: it sees the list it signed for was altered.
    expect(await tagOf(state.receiveAnswer(answer))).toBe("DowngradeDetected")
  })

  it("interoperates between the BigInt and node:crypto backends", async () => {
    const r = await run({ modpBackend: bigintModpBackend }, {})
    await expectWorkingPair(r.callerSession, r.calleeSession)
  })

  it("gives every call fresh keys and a fresh safety code", async () => {
    const [a, b] = [await run(), await run()]
    expect(a.callerSession.safetyCode).not.toBe(b.callerSession.safetyCode)
    expect(toHex(a.callerSession.sframeSendKey)).not.toBe(toHex(b.callerSession.sframeSendKey))
    expect(await tagOf(b.calleeSession.open(await a.callerSession.seal(text("x"))))).toBe("SignallingAuthenticationFailed")
  })
})

describe("call handshake under attack", () => {
  it("a substituted identity key (server as man in the middle) fails with BadSignature on the side that notices", async () => {
    // Mallory answers Alice's offer posing as Bob: Alice verifies against Bob's real key.
    const { offer, state } = await startCallerHandshake(callerParty())
    const forged = await respondToOffer({ ...calleeParty({ selfIdentity: mallory }), offer })
    expect(await tagOf(state.receiveAnswer(forged.answer))).toBe("BadSignature")
    expect(state.state).toBe("failed")
    // Mallory calls Bob posing as Alice (claiming Alice's public key, signing with her own): Bob verifies her
    // Confirm against Alice's real key.
    const fake = await startCallerHandshake(callerParty({ selfIdentity: { ...mallory, publicKeySpki: alice.publicKeySpki } }))
    const bobSide = await respondToOffer({ ...calleeParty(), offer: fake.offer })
    const mallorySide = await fake.state.receiveAnswer(bobSide.answer)
    expect(await tagOf(bobSide.state.receiveConfirm(mallorySide.confirm))).toBe("BadSignature")
  })

  it("a key substituted at activation gives both victims working sessions but different safety codes", async () => {
    // Alice was handed Mallory's key as "Bob's", Bob was handed Mallory's key as "Alice's"; Mallory relays.
    const left = await run({ peerPublicKeySpki: mallory.publicKeySpki }, { selfIdentity: mallory })
    const right = await run({ selfIdentity: mallory }, { peerPublicKeySpki: mallory.publicKeySpki })
    expect(left.callerSession.safetyCode).toBe(left.calleeSession.safetyCode)
    expect(left.callerSession.safetyCode).not.toBe(right.calleeSession.safetyCode)
    const honest = await run()
    expect(new Set([honest.callerSession.safetyCode, left.callerSession.safetyCode, right.calleeSession.safetyCode]).size).toBe(3)
  })

  it("the safety code differs between calls and when a party id differs", async () => {
    // Same keys, nonces fresh every run: the code differs; same ids but another callee key: differs as well.
    const codes = new Set<string>()
    for (const r of [await run(), await run({ selfId: "customer-alice-2" }, { peerId: "customer-alice-2" })])
      codes.add(r.callerSession.safetyCode)
    expect(codes.size).toBe(2)
  })

  it("a replayed Answer, a replayed Confirm, and messages out of order are refused", async () => {
    const first = await run()
    expect(await tagOf(first.state.receiveAnswer(first.answer))).toBe("UnexpectedMessage")
    expect(await tagOf(first.calleeState.receiveConfirm(first.confirm))).toBe("UnexpectedMessage")
    // Same call id, new handshake: the old Answer and Confirm do not fit the new transcript.
    const { offer, state } = await startCallerHandshake(callerParty())
    expect(await tagOf(state.receiveAnswer(first.answer))).toBe("BadSignature")
    const replayedOffer = await respondToOffer({ ...calleeParty(), offer: first.offer })
    expect(await tagOf(replayedOffer.state.receiveConfirm(first.confirm))).toBe("BadSignature")
    // Reordered: an Offer or Confirm where an Answer belongs, and so on.
    const fresh = await startCallerHandshake(callerParty())
    expect(await tagOf(fresh.state.receiveAnswer(offer))).toBe("UnexpectedMessage")
    const second = await startCallerHandshake(callerParty())
    expect(await tagOf(second.state.receiveAnswer(first.confirm))).toBe("UnexpectedMessage")
    const callee = await respondToOffer({ ...calleeParty(), offer })
    expect(await tagOf(callee.state.receiveConfirm(callee.answer))).toBe("UnexpectedMessage")
    expect(await tagOf(respondToOffer({ ...calleeParty(), offer: callee.answer }))).toBe("UnexpectedMessage")
  })

  it("a tampered transcript field fails with BadSignature", async () => {
    const { offer, state } = await startCallerHandshake(callerParty())
    const o = parseOffer(offer)
    // Nonce A swapped on the way to Bob: Bob signs a transcript Alice never saw.
    const tamperedOffer = buildOffer({ ...o, nonce: o.nonce.map((b) => b ^ 0xff) })
    const { answer } = await respondToOffer({ ...calleeParty(), offer: tamperedOffer })
    expect(await tagOf(state.receiveAnswer(answer))).toBe("BadSignature")
    // Nonce B swapped on the way back.
    const second = await startCallerHandshake(callerParty())
    const reply = await respondToOffer({ ...calleeParty(), offer: second.offer })
    const a = parseAnswer(reply.answer)
    expect(await tagOf(second.state.receiveAnswer(buildAnswer({ ...a, nonce: a.nonce.map((b) => b ^ 1) })))).toBe("BadSignature")
    // Callee ephemeral swapped for another valid group element.
    const third = await startCallerHandshake(callerParty())
    const reply3 = await respondToOffer({ ...calleeParty(), offer: third.offer })
    const a3 = parseAnswer(reply3.answer)
    expect(await tagOf(third.state.receiveAnswer(buildAnswer({ ...a3, publicValue: bigIntToBytes(4n, 384) })))).toBe("BadSignature")
  })

  it("a wrong or mangled signature fails with BadSignature", async () => {
    const { offer, state } = await startCallerHandshake(callerParty())
    const reply = await respondToOffer({ ...calleeParty(), offer })
    const a = parseAnswer(reply.answer)
    const flipped = a.signature.slice()
    flipped[100]! ^= 1
    expect(await tagOf(state.receiveAnswer(buildAnswer({ ...a, signature: flipped })))).toBe("BadSignature")
    const second = await startCallerHandshake(callerParty())
    const reply2 = await respondToOffer({ ...calleeParty(), offer: second.offer })
    const { confirm } = await second.state.receiveAnswer(reply2.answer)
    expect(await tagOf(reply2.state.receiveConfirm(buildConfirm(CALL, new Uint8Array(512).fill(7))))).toBe("BadSignature")
    expect(reply2.state.state).toBe("failed")
    // Having failed, the state stays failed: even the genuine Confirm no longer starts a call.
    expect(await tagOf(reply2.state.receiveConfirm(confirm))).toBe("UnexpectedMessage")
  })

  it("peer values outside the group (0, 1, p-1, p, an element of order 2q) fail with InvalidPeerValue on both sides", async () => {
    const p = MODP_GROUP_15.p
    for (const y of [0n, 1n, p - 1n, p, p - 2n]) {
      const bad = bigIntToBytes(y, 384)
      const { offer } = await startCallerHandshake(callerParty())
      const o = parseOffer(offer)
      const badOffer = buildOffer({ ...o, shares: [{ suite: 1, publicValue: bad }] })
      expect(await tagOf(respondToOffer({ ...calleeParty(), offer: badOffer }))).toBe("InvalidPeerValue")
      const caller = await startCallerHandshake(callerParty())
      const reply = await respondToOffer({ ...calleeParty(), offer: caller.offer })
      const badAnswer = buildAnswer({ ...parseAnswer(reply.answer), publicValue: bad })
      expect(await tagOf(caller.state.receiveAnswer(badAnswer))).toBe("InvalidPeerValue")
    }
  })

  it("a downgraded suite list (group 15 stripped) fails with DowngradeDetected", async () => {
    const { offer, state } = await startCallerHandshake(callerParty({ allowCompatibilityGroup14: true }))
    const o = parseOffer(offer)
    const stripped = buildOffer({ ...o, shares: o.shares.filter((s) => s.suite === 2) })
    const { answer } = await respondToOffer({ ...calleeParty({ allowCompatibilityGroup14: true }), offer: stripped })
    expect(await tagOf(state.receiveAnswer(answer))).toBe("DowngradeDetected")
  })

  it("group 14 without opt-in and unknown suites fail with SuiteNotAllowed", async () => {
    // Callee without opt-in gets a group-14-only offer.
    const { offer } = await startCallerHandshake(callerParty({ allowCompatibilityGroup14: true }))
    const o = parseOffer(offer)
    const only14 = buildOffer({ ...o, shares: o.shares.filter((s) => s.suite === 2) })
    expect(await tagOf(respondToOffer({ ...calleeParty(), offer: only14 }))).toBe("SuiteNotAllowed")
    // Caller without opt-in gets a group 14 answer (the callee was fed a forged group-14 offer).
    const plain = await startCallerHandshake(callerParty())
    const forged = buildOffer({ ...parseOffer(plain.offer), shares: o.shares.filter((s) => s.suite === 2) })
    const { answer } = await respondToOffer({ ...calleeParty({ allowCompatibilityGroup14: true }), offer: forged })
    expect(await tagOf(plain.state.receiveAnswer(answer))).toBe("SuiteNotAllowed")
    // Only suites nobody knows.
    const unknown = buildOffer({ ...o, shares: [{ suite: 0x7777, publicValue: new Uint8Array(10) }] })
    expect(await tagOf(respondToOffer({ ...calleeParty(), offer: unknown }))).toBe("SuiteNotAllowed")
  })

  it("a message of another call fails with WrongCallId and leaves the handshake able to finish", async () => {
    const { offer, state } = await startCallerHandshake(callerParty())
    expect(await tagOf(respondToOffer({ ...calleeParty({ callId: "other-call" }), offer }))).toBe("WrongCallId")
    const reply = await respondToOffer({ ...calleeParty(), offer })
    const a = parseAnswer(reply.answer)
    expect(await tagOf(state.receiveAnswer(buildAnswer({ ...a, callId: "other-call" })))).toBe("WrongCallId")
    expect(state.state).toBe("awaiting-answer")
    const { confirm } = await state.receiveAnswer(reply.answer)
    const c = inspectHandshakeMessage(confirm)
    expect(c).toEqual({ type: "confirm", callId: CALL })
    expect(await tagOf(reply.state.receiveConfirm(buildConfirm("other-call", new Uint8Array(512))))).toBe("WrongCallId")
    expect((await reply.state.receiveConfirm(confirm)).safetyCode).toMatch(/^\d{5}/)
  })

  it("malformed bytes fail with MalformedMessage, and no mutation of a message ever throws an untyped error", async () => {
    const { offer, state } = await startCallerHandshake(callerParty())
    const malformed = [
      new Uint8Array(0),
      Uint8Array.of(1),
      Uint8Array.of(2, 1, 1, 0x41),
      Uint8Array.of(1, 9, 1, 0x41),
      offer.subarray(0, offer.length - 1),
      new Uint8Array([...offer, 0]),
      Uint8Array.of(1, 1, 0),
      Uint8Array.of(1, 1, 2, 0xc3, 0x28)
    ]
    for (const bytes of malformed) expect(await tagOf(respondToOffer({ ...calleeParty(), offer: bytes }))).toBe("MalformedMessage")
    const o = parseOffer(offer)
    expect(await tagOf(respondToOffer({ ...calleeParty(), offer: buildOffer({ ...o, shares: [...o.shares, ...o.shares] }) }))).toBe(
      "MalformedMessage"
    )
    expect(await tagOf(respondToOffer({ ...calleeParty(), offer: buildOffer({ ...o, shares: [] }) }))).toBe("MalformedMessage")
    expect(
      await tagOf(respondToOffer({ ...calleeParty(), offer: buildOffer({ ...o, shares: [{ suite: 1, publicValue: new Uint8Array(383) }] }) }))
    ).toBe("MalformedMessage")
    expect(() => inspectHandshakeMessage(Uint8Array.of(7))).toThrow(expect.objectContaining({ _tag: "MalformedMessage" }))
    // Random single-byte damage and truncation of an Answer: always a typed error, never something else.
    const seen = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const { state: s, offer: off } = await startCallerHandshake(callerParty())
      const r = await respondToOffer({ ...calleeParty(), offer: off })
      const damaged = i % 2 === 0 ? r.answer.slice() : r.answer.slice(0, Math.floor((r.answer.length * i) / 40))
      if (i % 2 === 0) damaged[(i * 97) % damaged.length]! ^= 1 << i % 8
      const tag = await tagOf(s.receiveAnswer(damaged))
      expect(tag).not.toMatch(/^untyped|^resolved/)
      seen.add(tag)
    }
    expect(seen.has("MalformedMessage")).toBe(true)
    expect(state.state).toBe("awaiting-answer")
  })
})

describe("call session", () => {
  let s: Awaited<ReturnType<typeof run>>
  beforeAll(async () => {
    s = await run()
  })

  it("refuses replayed, reordered and forged signalling records, without losing its place", async () => {
    const r0 = await s.callerSession.seal(text("m0"))
    const r1 = await s.callerSession.seal(text("m1"))
    const r2 = await s.callerSession.seal(text("m2"))
    expect(await tagOf(s.calleeSession.open(r1))).toMatch(/SignallingOutOfOrder/)
    expect(decode(await s.calleeSession.open(r0))).toBe("m0")
    expect(await tagOf(s.calleeSession.open(r0))).toMatch(/SignallingOutOfOrder/)
    const forged = r1.slice()
    forged[forged.length - 1]! ^= 1
    expect(await tagOf(s.calleeSession.open(forged))).toMatch(/SignallingAuthenticationFailed/)
    expect(await tagOf(s.calleeSession.open(new Uint8Array([...r1.subarray(0, 9), ...r2.subarray(9)])))).toMatch(/SignallingAuthenticationFailed/)
    // A record reflected back to its sender does not open (per-direction keys); the genuine ones still open in order.
    expect(await tagOf(s.callerSession.open(r0))).toMatch(/SignallingAuthenticationFailed/)
    const [m1, m2] = await Promise.all([s.calleeSession.open(r1), s.calleeSession.open(r2)])
    expect([decode(m1), decode(m2)]).toEqual(["m1", "m2"])
    expect(await tagOf(s.calleeSession.open(Uint8Array.of(1, 2, 3)))).toMatch(/MalformedMessage/)
  })

  it("fails closed after destroy(): keys zeroed, nothing sealed or opened, SFrame contexts dead", async () => {
    const r = await run()
    const tx = await r.callerSession.createSFrameSender()
    const record = await r.calleeSession.seal(text("late"))
    r.callerSession.destroy()
    expect(r.callerSession.destroyed).toBe(true)
    expect(r.callerSession.sframeSendKey.every((b) => b === 0)).toBe(true)
    expect(r.callerSession.sframeReceiveKey.every((b) => b === 0)).toBe(true)
    expect(await tagOf(r.callerSession.seal(text("x")))).toMatch(/KeysDestroyed/)
    expect(await tagOf(r.callerSession.open(record))).toMatch(/KeysDestroyed/)
    expect(await tagOf(tx.encrypt(text("frame")))).toMatch(/KeysDestroyed/)
    expect(await tagOf(r.callerSession.createSFrameReceiver())).toMatch(/KeysDestroyed/)
  })

  it("an abandoned handshake refuses to continue", async () => {
    const { offer, state } = await startCallerHandshake(callerParty())
    const reply = await respondToOffer({ ...calleeParty(), offer })
    state.destroy()
    expect(await tagOf(state.receiveAnswer(reply.answer))).toBe("KeysDestroyed")
    reply.state.destroy()
    expect(await tagOf(reply.state.receiveConfirm(new Uint8Array(3)))).toBe("KeysDestroyed")
    expect(state).toBeInstanceOf(CallerHandshake)
  })
})
