/**
 * Typed failures of a secured call (CallSecurity.ts), next to the handshake errors of src/crypto. None carries
 * identifiers, keys or payload bytes, so an app may log them.
 */
import { Schema } from "effect"
import { CallEndReason } from "../domain/liveEvents.js"

/**
 * The peer presented no identity key this device trusts for it (or the device trusts none at all). Either the
 * device was never told the key (a host device enrolled after activation), or someone in between, such as the
 * server, pretends to be the peer. The call is hung up.
 */
export class UnknownPeerKey extends Schema.TaggedError<UnknownPeerKey>()("UnknownPeerKey", {}) {
  override get message() {
    return "the other party's identity key is not one this device trusts"
  }
}

/** The handshake did not finish in time. The call is hung up. */
export class HandshakeTimedOut extends Schema.TaggedError<HandshakeTimedOut>()("HandshakeTimedOut", {}) {
  override get message() {
    return "the call's key exchange did not finish in time"
  }
}

/**
 * The call is over: the server's reason, `closed` when this side closed it, `not-found` when the server no
 * longer knows the call. Its keys are destroyed; nothing more is sent or received.
 */
export class SecureCallEnded extends Schema.TaggedError<SecureCallEnded>()("SecureCallEnded", {
  reason: Schema.Union(CallEndReason, Schema.Literal("closed", "not-found"))
}) {
  override get message() {
    return `the call has ended (${this.reason})`
  }
}

/**
 * A relayed signalling payload was dropped instead of being handed to the app: it failed authentication (forged
 * or tampered with), came out of order (replayed, reordered, or one before it was lost), was not a sealed record
 * of this protocol, or opened to something that is not a valid message. The call goes on.
 */
export class SignalRejected extends Schema.TaggedError<SignalRejected>()("SignalRejected", {
  reason: Schema.Literal("authentication-failed", "out-of-order", "malformed", "unexpected", "invalid-message")
}) {
  override get message() {
    return `a signalling payload was dropped (${this.reason})`
  }
}

/** The message is too large for one sealed signalling payload; nothing was sent. */
export class SignalTooLarge extends Schema.TaggedError<SignalTooLarge>()("SignalTooLarge", {
  bytes: Schema.Number,
  maxBytes: Schema.Number
}) {
  override get message() {
    return `a signalling message of ${this.bytes} bytes exceeds ${this.maxBytes}`
  }
}
