/**
 * Typed failures of the end-to-end layer. Each is a Schema.TaggedError so the SDK can forward it across the RPC
 * boundary unchanged. None carries identifiers, keys or payload bytes: these errors may end up in logs.
 */
import { Schema } from "effect"

const Role = Schema.Literal("caller", "callee")

/** The bytes are not a well-formed message of this protocol version (bad length, unknown field, trailing data). */
export class MalformedMessage extends Schema.TaggedError<MalformedMessage>()("MalformedMessage", {
  reason: Schema.String
}) {
  override get message() {
    return `malformed handshake message: ${this.reason}`
  }
}

/** A well-formed message that this state does not accept now: a replay, a reordering, or a message after the end. */
export class UnexpectedMessage extends Schema.TaggedError<UnexpectedMessage>()("UnexpectedMessage", {
  expected: Schema.String,
  received: Schema.String
}) {
  override get message() {
    return `unexpected handshake message: expected ${this.expected}, received ${this.received}`
  }
}

/** The message belongs to another call. It does not end the handshake it was misrouted to. */
export class WrongCallId extends Schema.TaggedError<WrongCallId>()("WrongCallId", {}) {
  override get message() {
    return "handshake message belongs to another call"
  }
}

/** No suite both sides allow, or the peer chose one this side never offered or does not allow. */
export class SuiteNotAllowed extends Schema.TaggedError<SuiteNotAllowed>()("SuiteNotAllowed", {
  suite: Schema.optional(Schema.Number),
  reason: Schema.String
}) {
  override get message() {
    return `handshake suite not allowed: ${this.reason}`
  }
}

/** The callee signed a suite list that differs from the one the caller sent: someone stripped suites on the way. */
export class DowngradeDetected extends Schema.TaggedError<DowngradeDetected>()("DowngradeDetected", {}) {
  override get message() {
    return "the offered suite list was altered in transit"
  }
}

/** The peer's Diffie-Hellman value is not an element of the prime-order subgroup (or not even of the group). */
export class InvalidPeerValue extends Schema.TaggedError<InvalidPeerValue>()("InvalidPeerValue", {
  reason: Schema.String
}) {
  override get message() {
    return `invalid Diffie-Hellman value: ${this.reason}`
  }
}

/** The transcript signature does not verify under the identity key this side expected for the peer. */
export class BadSignature extends Schema.TaggedError<BadSignature>()("BadSignature", { signer: Role }) {
  override get message() {
    return `the ${this.signer}'s transcript signature does not verify`
  }
}

/** A sealed signalling record failed authentication (forged, tampered, or under another key). */
export class SignallingAuthenticationFailed extends Schema.TaggedError<SignallingAuthenticationFailed>()(
  "SignallingAuthenticationFailed",
  {}
) {
  override get message() {
    return "signalling record failed authentication"
  }
}

/** A signalling record arrived out of sequence: a replay, a reordering, or a dropped record before it. */
export class SignallingOutOfOrder extends Schema.TaggedError<SignallingOutOfOrder>()("SignallingOutOfOrder", {
  expected: Schema.Number,
  received: Schema.Number
}) {
  override get message() {
    return `signalling record out of order: expected ${this.expected}, received ${this.received}`
  }
}

/** The session or context was destroyed (hang-up): its keys are gone and nothing can be sealed or opened. */
export class KeysDestroyed extends Schema.TaggedError<KeysDestroyed>()("KeysDestroyed", {}) {
  override get message() {
    return "keys were destroyed"
  }
}

/** An SFrame ciphertext too short or with an impossible header. */
export class MalformedFrame extends Schema.TaggedError<MalformedFrame>()("MalformedFrame", { reason: Schema.String }) {
  override get message() {
    return `malformed SFrame frame: ${this.reason}`
  }
}

/** The frame names a key id the receiver holds no key for. Fail closed: such frames are dropped. */
export class UnknownKeyId extends Schema.TaggedError<UnknownKeyId>()("UnknownKeyId", {}) {
  override get message() {
    return "no key for the frame's key id"
  }
}

/** The frame's counter was seen before or lies behind the replay window. */
export class ReplayedFrame extends Schema.TaggedError<ReplayedFrame>()("ReplayedFrame", {}) {
  override get message() {
    return "SFrame counter replayed or too old"
  }
}

/** The frame's tag does not verify. */
export class FrameAuthenticationFailed extends Schema.TaggedError<FrameAuthenticationFailed>()(
  "FrameAuthenticationFailed",
  {}
) {
  override get message() {
    return "SFrame authentication failed"
  }
}

/** A sender ran out of counter values for its key (2^64 frames): it must be rekeyed. */
export class CounterExhausted extends Schema.TaggedError<CounterExhausted>()("CounterExhausted", {}) {
  override get message() {
    return "counter space exhausted, rekey required"
  }
}

/** Everything the call handshake can fail with. */
export type HandshakeError =
  | MalformedMessage
  | UnexpectedMessage
  | WrongCallId
  | SuiteNotAllowed
  | DowngradeDetected
  | InvalidPeerValue
  | BadSignature
  | KeysDestroyed

/** Everything opening a signalling record can fail with. */
export type SignallingError = MalformedMessage | SignallingAuthenticationFailed | SignallingOutOfOrder | KeysDestroyed

/** Everything SFrame protection can fail with. */
export type SFrameError = MalformedFrame | UnknownKeyId | ReplayedFrame | FrameAuthenticationFailed | CounterExhausted | KeysDestroyed

const handshakeTags: ReadonlySet<string> = new Set([
  "MalformedMessage",
  "UnexpectedMessage",
  "WrongCallId",
  "SuiteNotAllowed",
  "DowngradeDetected",
  "InvalidPeerValue",
  "BadSignature",
  "KeysDestroyed"
])

const hasTag = (u: unknown): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && typeof (u as { _tag?: unknown })._tag === "string"

export const isHandshakeError = (u: unknown): u is HandshakeError => hasTag(u) && handshakeTags.has(u._tag)

const signallingTags: ReadonlySet<string> = new Set([
  "MalformedMessage",
  "SignallingAuthenticationFailed",
  "SignallingOutOfOrder",
  "KeysDestroyed"
])

export const isSignallingError = (u: unknown): u is SignallingError => hasTag(u) && signallingTags.has(u._tag)

const sframeTags: ReadonlySet<string> = new Set([
  "MalformedFrame",
  "UnknownKeyId",
  "ReplayedFrame",
  "FrameAuthenticationFailed",
  "CounterExhausted",
  "KeysDestroyed"
])

export const isSFrameError = (u: unknown): u is SFrameError => hasTag(u) && sframeTags.has(u._tag)
