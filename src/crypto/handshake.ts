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
import { concatBytes, utf8Bytes } from "./bytes.js"
import {
  BadSignature,
  DowngradeDetected,
  KeysDestroyed,
  MalformedMessage,
  SuiteNotAllowed,
  UnexpectedMessage,
  WrongCallId
} from "./errors.js"
import { signWithIdentity, verifyIdentitySignature, type IdentityKeyPair } from "./identity.js"
import { digest, hkdf } from "./kdf.js"
import {
  computeSharedSecret,
  defaultModpBackend,
  destroyEphemeral,
  generateEphemeral,
  MODP_GROUP_14,
  MODP_GROUP_15,
  validatePeerValue,
  type EphemeralKeyPair,
  type ModpBackend,
  type ModpGroup
} from "./modp.js"
import { CallSession, SESSION_KEY_BLOCK_BYTES } from "./session.js"
import { WireReader, WireWriter } from "./wire.js"

export const HANDSHAKE_VERSION = 1

export interface HandshakeSuite {
  readonly id: number
  readonly name: string
  readonly group: ModpGroup
  /** Allowed only when the party opted in explicitly. */
  readonly compatibility: boolean
}

/** In order of preference. Identity RSA-PSS-4096/SHA-256, HKDF-SHA-256, AES-256-GCM signalling, SFrame 0x0006. */
export const HANDSHAKE_SUITES: ReadonlyArray<HandshakeSuite> = [
  { id: 0x0001, name: "MODP3072_RSAPSS4096_SHA256_AES256GCM_SFRAME0006", group: MODP_GROUP_15, compatibility: false },
  { id: 0x0002, name: "MODP2048_RSAPSS4096_SHA256_AES256GCM_SFRAME0006", group: MODP_GROUP_14, compatibility: true }
]

const suiteById = (id: number): HandshakeSuite | undefined => HANDSHAKE_SUITES.find((s) => s.id === id)

const allowedSuites = (allowCompatibilityGroup14: boolean | undefined): ReadonlyArray<HandshakeSuite> =>
  HANDSHAKE_SUITES.filter((s) => !s.compatibility || allowCompatibilityGroup14 === true)

const NONCE_BYTES = 32
const MAX_SUITES = 16
const TYPE = { offer: 1, answer: 2, confirm: 3 } as const
type MessageType = keyof typeof TYPE
const TYPE_NAME: Record<number, MessageType> = { 1: "offer", 2: "answer", 3: "confirm" }

const TRANSCRIPT_LABEL = utf8Bytes("tessera call handshake v1 transcript")
const SIGNATURE_LABEL = {
  caller: utf8Bytes("tessera call handshake v1 caller signature"),
  callee: utf8Bytes("tessera call handshake v1 callee signature")
}
const KEY_SCHEDULE_LABEL = utf8Bytes("tessera call handshake v1 keys")

// ---------------------------------------------------------------------------------------------- wire messages

interface Offer {
  readonly callId: string
  readonly nonce: Uint8Array
  readonly shares: ReadonlyArray<{ readonly suite: number; readonly publicValue: Uint8Array }>
}
interface Answer {
  readonly callId: string
  readonly suite: number
  readonly offeredSuites: ReadonlyArray<number>
  readonly nonce: Uint8Array
  readonly publicValue: Uint8Array
  readonly signature: Uint8Array
}
interface Confirm {
  readonly callId: string
  readonly signature: Uint8Array
}

const header = (type: MessageType, callId: string): WireWriter =>
  new WireWriter().u8(HANDSHAKE_VERSION).u8(TYPE[type]).text8(callId)

const encodeOffer = (m: Offer): Uint8Array => {
  const w = header("offer", m.callId).fixed(m.nonce).u8(m.shares.length)
  for (const s of m.shares) w.u16(s.suite).bytes16(s.publicValue)
  return w.finish()
}

const encodeAnswer = (m: Answer): Uint8Array => {
  const w = header("answer", m.callId).u16(m.suite).u8(m.offeredSuites.length)
  for (const s of m.offeredSuites) w.u16(s)
  return w.fixed(m.nonce).bytes16(m.publicValue).bytes16(m.signature).finish()
}

const encodeConfirm = (m: Confirm): Uint8Array => header("confirm", m.callId).bytes16(m.signature).finish()

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

const decodeOfferBody = (reader: WireReader, callId: string): Offer => {
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

const decodeAnswerBody = (reader: WireReader, callId: string): Answer => {
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

const decodeConfirmBody = (reader: WireReader, callId: string): Confirm => {
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
const expectMessage = <A>(
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

// ------------------------------------------------------------------------------------------ transcript, keys

interface TranscriptInput {
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

const transcriptHash = (t: TranscriptInput): Promise<Uint8Array> => {
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

const signedContent = (role: "caller" | "callee", th: Uint8Array): Uint8Array => concatBytes(SIGNATURE_LABEL[role], th)

const keyBlock = async (sharedSecret: Uint8Array, th: Uint8Array): Promise<Uint8Array> => {
  try {
    return await hkdf("SHA-256", sharedSecret, th, KEY_SCHEDULE_LABEL, SESSION_KEY_BLOCK_BYTES)
  } finally {
    sharedSecret.fill(0)
  }
}

const randomNonce = (): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES))

// ------------------------------------------------------------------------------------------------ the parties

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

type Status = "awaiting-answer" | "awaiting-confirm" | "processing" | "complete" | "failed" | "destroyed"

const checkParty = (party: HandshakeParty): void => {
  for (const text of [party.callId, party.selfId, party.peerId]) {
    const n = utf8Bytes(text).length
    if (n === 0 || n > 255) throw new RangeError("call and party ids must be 1..255 UTF-8 bytes")
  }
}

/** Runs `step` as the one message this state accepts now, failing closed on every error but WrongCallId. */
const runStep = async <A>(
  self: { status: Status; destroy(): void },
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
  /** @internal */ status: Status = "awaiting-answer"

  /** @internal */
  constructor(
    private readonly party: HandshakeParty,
    private readonly offer: Offer,
    private readonly ephemerals: ReadonlyArray<{ readonly suite: HandshakeSuite; readonly pair: EphemeralKeyPair }>,
    private readonly backend: ModpBackend
  ) {}

  get state(): Status {
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
  /** @internal */ status: Status = "awaiting-confirm"
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

  get state(): Status {
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

