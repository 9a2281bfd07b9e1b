/**
 * The call handshake: an authenticated ephemeral Diffie-Hellman exchange in three binary messages.
 *
 *   caller -> callee  Offer   { callId, nonceA, [(suite, caller ephemeral for that suite)] }
 *   callee -> caller  Answer  { callId, chosen suite, offered suites as received, nonceB, callee ephemeral, sig_B }
 *   caller -> callee  Confirm { callId, sig_A }
 *
 * Both signatures (RSA-PSS identity keys) cover the transcript hash TH = SHA-256 of: version, call id, both party
 * ids, both identity keys (SPKI), the offered suite list, the chosen suite, both nonces and both ephemerals; each
 * under its own role label. Each side builds TH from what it knows itself (ids and identity keys from activation),
 * so a substituted key or id shows up as BadSignature. The callee echoes the suite list it received, and the
 * caller compares it with what it sent after the signature verified: a stripped list is DowngradeDetected.
 * Offers carry one key share per offered suite, so a compatibility suite costs no extra round trip.
 *
 * Keys: one HKDF-SHA-256 expansion of the DH shared secret with TH as salt gives the signalling keys and IVs per
 * direction, the SFrame base keys per direction and the safety code (layout in session.ts).
 *
 * Every failure is a typed error (errors.ts) and ends the handshake for good, except WrongCallId (a message for
 * another call says nothing about this one). Message bytes are decoded strictly.
 */
import { utf8Bytes } from "./bytes.js"
import { BadSignature, DowngradeDetected, KeysDestroyed, SuiteNotAllowed, UnexpectedMessage, WrongCallId } from "./errors.js"
import { allowedSuites, type HandshakeSuite } from "./handshake-suites.js"
import { keyBlock, randomNonce, signedContent, transcriptHash, type TranscriptInput } from "./handshake-transcript.js"
import {
  decodeAnswerBody,
  decodeConfirmBody,
  decodeOfferBody,
  encodeAnswer,
  encodeConfirm,
  encodeOffer,
  expectMessage,
  type Offer
} from "./handshake-wire.js"
import { signWithIdentity, verifyIdentitySignature, type IdentityKeyPair } from "./identity.js"
import {
  computeSharedSecret,
  defaultModpBackend,
  destroyEphemeral,
  generateEphemeral,
  validatePeerValue,
  type EphemeralKeyPair,
  type ModpBackend
} from "./modp.js"
import { CallSession } from "./session.js"

export { HANDSHAKE_SUITES, HANDSHAKE_VERSION, type HandshakeSuite } from "./handshake-suites.js"
export { inspectHandshakeMessage } from "./handshake-wire.js"

export interface HandshakeParty {
  readonly callId: string
  readonly selfId: string
  readonly selfIdentity: IdentityKeyPair
  readonly peerId: string
  /** The peer's identity key as learnt at activation (DER SPKI), never as received during the call. */
  readonly peerPublicKeySpki: Uint8Array
  /** Offer/accept the 2048-bit group 14. Both sides must opt in, otherwise it is refused. */
  readonly allowCompatibilityGroup14?: boolean
  /** DH arithmetic; node:crypto in Node and BigInt in browsers unless given. */
  readonly modpBackend?: ModpBackend
}

export type HandshakeStatus = "awaiting-answer" | "awaiting-confirm" | "processing" | "complete" | "failed" | "destroyed"

const checkParty = (party: HandshakeParty): void => {
  for (const text of [party.callId, party.selfId, party.peerId]) {
    const n = utf8Bytes(text).length
    if (n === 0 || n > 255) throw new RangeError("call and party ids must be 1..255 UTF-8 bytes")
  }
}

/** Runs `step` as the one message this state accepts now, failing closed on every error but WrongCallId. */
const runStep = async <A>(
  self: { status: HandshakeStatus; destroy(): void },
  awaiting: "awaiting-answer" | "awaiting-confirm",
  step: () => Promise<A>
): Promise<A> => {
  if (self.status === "destroyed") throw new KeysDestroyed()
  if (self.status !== awaiting) {
    throw new UnexpectedMessage({
      expected: "nothing",
      received: awaiting === "awaiting-answer" ? "answer" : "confirm"
    })
  }
  self.status = "processing"
  try {
    const result = await step()
    self.status = "complete"
    return result
  } catch (e) {
    if (e instanceof WrongCallId) self.status = awaiting
    else {
      self.destroy()
      self.status = "failed"
    }
    throw e
  }
}

/** The caller's side between Offer and Answer. */
export class CallerHandshake {
  /** @internal */ status: HandshakeStatus = "awaiting-answer"

  /** @internal */
  constructor(
    private readonly party: HandshakeParty,
    private readonly offer: Offer,
    private readonly ephemerals: ReadonlyArray<{ readonly suite: HandshakeSuite; readonly pair: EphemeralKeyPair }>,
    private readonly backend: ModpBackend
  ) {}

  get state(): HandshakeStatus {
    return this.status
  }

  /**
   * Verifies the callee's Answer. On success returns the Confirm to send and the call's session; the caller may
   * seal signalling at once. Rejects with a HandshakeError.
   */
  receiveAnswer(bytes: Uint8Array): Promise<{ readonly confirm: Uint8Array; readonly session: CallSession }> {
    return runStep(this, "awaiting-answer", async () => {
      const answer = expectMessage(bytes, "answer", this.party.callId, decodeAnswerBody)
      const offered = this.ephemerals.find((e) => e.suite.id === answer.suite)
      if (!offered) throw new SuiteNotAllowed({ suite: answer.suite, reason: "the callee chose a suite that was not offered" })
      validatePeerValue(offered.suite.group, answer.publicValue, this.backend)
      const t: TranscriptInput = {
        callId: this.party.callId,
        callerId: this.party.selfId,
        calleeId: this.party.peerId,
        callerSpki: this.party.selfIdentity.publicKeySpki,
        calleeSpki: this.party.peerPublicKeySpki,
        offeredSuites: answer.offeredSuites,
        suite: answer.suite,
        callerNonce: this.offer.nonce,
        calleeNonce: answer.nonce,
        callerPublic: offered.pair.publicValue,
        calleePublic: answer.publicValue
      }
      const th = await transcriptHash(t)
      if (!(await verifyIdentitySignature(this.party.peerPublicKeySpki, answer.signature, signedContent("callee", th))))
        throw new BadSignature({ signer: "callee" })
      const sent = this.offer.shares.map((s) => s.suite)
      if (sent.length !== answer.offeredSuites.length || sent.some((s, i) => s !== answer.offeredSuites[i]))
        throw new DowngradeDetected()
      const secret = computeSharedSecret(offered.pair, answer.publicValue, this.backend)
      const block = await keyBlock(secret, th)
      const signature = await signWithIdentity(this.party.selfIdentity.privateKey, signedContent("caller", th))
      const session = await CallSession.fromKeyBlock("caller", offered.suite.name, th, block)
      this.destroyEphemerals()
      return { confirm: encodeConfirm({ callId: this.party.callId, signature }), session }
    })
  }

  private destroyEphemerals(): void {
    for (const { pair } of this.ephemerals) destroyEphemeral(pair)
  }

  /** Abandons the handshake (hang-up before it finished) and zeroes the ephemeral exponents. */
  destroy(): void {
    this.destroyEphemerals()
    if (this.status !== "complete" && this.status !== "failed") this.status = "destroyed"
  }
}

/**
 * Starts a call: the Offer to send to the callee and the state that will take the Answer. Offers group 15, and
 * group 14 too when `allowCompatibilityGroup14` is set.
 */
export const startCallerHandshake = async (
  party: HandshakeParty
): Promise<{ readonly offer: Uint8Array; readonly state: CallerHandshake }> => {
  checkParty(party)
  const backend = party.modpBackend ?? defaultModpBackend()
  const ephemerals = allowedSuites(party.allowCompatibilityGroup14).map((suite) => ({
    suite,
    pair: generateEphemeral(suite.group, backend)
  }))
  const offer: Offer = {
    callId: party.callId,
    nonce: randomNonce(),
    shares: ephemerals.map(({ suite, pair }) => ({ suite: suite.id, publicValue: pair.publicValue }))
  }
  return { offer: encodeOffer(offer), state: new CallerHandshake(party, offer, ephemerals, backend) }
}

/** The callee's side between Answer and Confirm. */
export class CalleeHandshake {
  /** @internal */ status: HandshakeStatus = "awaiting-confirm"
  private block: Uint8Array | undefined

  /** @internal */
  constructor(
    private readonly party: HandshakeParty,
    private readonly suite: HandshakeSuite,
    private readonly th: Uint8Array,
    block: Uint8Array
  ) {
    this.block = block
  }

  get state(): HandshakeStatus {
    return this.status
  }

  /** Verifies the caller's Confirm and returns the call's session. Rejects with a HandshakeError. */
  receiveConfirm(bytes: Uint8Array): Promise<CallSession> {
    return runStep(this, "awaiting-confirm", async () => {
      const confirm = expectMessage(bytes, "confirm", this.party.callId, decodeConfirmBody)
      if (!(await verifyIdentitySignature(this.party.peerPublicKeySpki, confirm.signature, signedContent("caller", this.th))))
        throw new BadSignature({ signer: "caller" })
      const block = this.block
      if (!block) throw new KeysDestroyed()
      this.block = undefined
      return CallSession.fromKeyBlock("callee", this.suite.name, this.th, block)
    })
  }

  /** Abandons the handshake and zeroes the keys derived so far. */
  destroy(): void {
    this.block?.fill(0)
    this.block = undefined
    if (this.status !== "complete" && this.status !== "failed") this.status = "destroyed"
  }
}

/**
 * Answers a caller's Offer: picks the most preferred suite both sides allow, validates the caller's value, signs
 * the transcript. Returns the Answer to send and the state that will take the Confirm. No session exists before
 * the caller's Confirm verified. Rejects with a HandshakeError.
 */
export const respondToOffer = async (
  party: HandshakeParty & { readonly offer: Uint8Array }
): Promise<{ readonly answer: Uint8Array; readonly state: CalleeHandshake }> => {
  checkParty(party)
  const backend = party.modpBackend ?? defaultModpBackend()
  const offer = expectMessage(party.offer, "offer", party.callId, decodeOfferBody)
  const offeredIds = offer.shares.map((s) => s.suite)
  const suite = allowedSuites(party.allowCompatibilityGroup14).find((s) => offeredIds.includes(s.id))
  if (!suite) throw new SuiteNotAllowed({ reason: "no offered suite is allowed here" })
  const callerPublic = offer.shares.find((s) => s.suite === suite.id)!.publicValue
  validatePeerValue(suite.group, callerPublic, backend)
  const pair = generateEphemeral(suite.group, backend)
  try {
    const nonce = randomNonce()
    const th = await transcriptHash({
      callId: party.callId,
      callerId: party.peerId,
      calleeId: party.selfId,
      callerSpki: party.peerPublicKeySpki,
      calleeSpki: party.selfIdentity.publicKeySpki,
      offeredSuites: offeredIds,
      suite: suite.id,
      callerNonce: offer.nonce,
      calleeNonce: nonce,
      callerPublic,
      calleePublic: pair.publicValue
    })
    const block = await keyBlock(computeSharedSecret(pair, callerPublic, backend), th)
    const signature = await signWithIdentity(party.selfIdentity.privateKey, signedContent("callee", th))
    const answer = encodeAnswer({
      callId: party.callId,
      suite: suite.id,
      offeredSuites: offeredIds,
      nonce,
      publicValue: pair.publicValue,
      signature
    })
    return { answer, state: new CalleeHandshake(party, suite, th, block) }
  } finally {
    destroyEphemeral(pair)
  }
}

