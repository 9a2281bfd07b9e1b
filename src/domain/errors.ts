/**
 * The typed errors of tessera's public contract. They cross the wire as Schema.TaggedError, so a client can tell
 * exactly what went wrong; none of them carries an identifier, code or key.
 */
import { Schema } from "effect"

// Activation (customer) and device enrollment (host)
export class ActivationCodeInvalid extends Schema.TaggedError<ActivationCodeInvalid>()("ActivationCodeInvalid", {}) {
  override get message() { return "This activation code is not valid. Check it, or ask the practice for a new one." }
}
export class ActivationCodeExpired extends Schema.TaggedError<ActivationCodeExpired>()("ActivationCodeExpired", {}) {
  override get message() { return "This activation code has expired. Ask the practice for a new one." }
}
export class ActivationCodeUsed extends Schema.TaggedError<ActivationCodeUsed>()("ActivationCodeUsed", {}) {
  override get message() { return "This activation code has already been used." }
}
export class ActivationCodeSuperseded extends Schema.TaggedError<ActivationCodeSuperseded>()(
  "ActivationCodeSuperseded",
  {}
) {
  override get message() { return "This activation code was replaced by a newer one." }
}
export class EnrollmentCodeInvalid extends Schema.TaggedError<EnrollmentCodeInvalid>()("EnrollmentCodeInvalid", {
  reason: Schema.Literal("unknown", "expired", "used", "superseded")
}) {
  override get message() { return `Enrollment code rejected (${this.reason}).` }
}
export class TooManyAttempts extends Schema.TaggedError<TooManyAttempts>()("TooManyAttempts", {
  retryAfterSeconds: Schema.Number
}) {
  override get message() { return `Too many failed attempts; try again in ${this.retryAfterSeconds} s.` }
}

// Connecting
export class ChallengeInvalid extends Schema.TaggedError<ChallengeInvalid>()("ChallengeInvalid", {}) {
  override get message() { return "No fresh challenge for this connection: request a new one." }
}
export class SignatureInvalid extends Schema.TaggedError<SignatureInvalid>()("SignatureInvalid", {}) {
  override get message() { return "The challenge signature does not match the device key." }
}
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {}) {
  override get message() { return "The config file is not signed by this server." }
}
/** The account behind a config was revoked or deleted: the device must forget its config. */
export class ConfigRevoked extends Schema.TaggedError<ConfigRevoked>()("ConfigRevoked", {}) {
  override get message() { return "This device's access was revoked by the practice." }
}
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {}) {
  override get message() { return "Authenticate the connection first." }
}
export class NotPermitted extends Schema.TaggedError<NotPermitted>()("NotPermitted", {}) {
  override get message() { return "Not permitted for this account." }
}

// Accounts
export class CustomerNotFound extends Schema.TaggedError<CustomerNotFound>()("CustomerNotFound", {}) {
  override get message() { return "No such customer account at this practice." }
}
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String
}) {}
/** Too many concurrent changes to one account; the request had no effect and may be retried. */
export class AccountBusy extends Schema.TaggedError<AccountBusy>()("AccountBusy", {}) {}

// Calls
export class PeerUnavailable extends Schema.TaggedError<PeerUnavailable>()("PeerUnavailable", {}) {
  override get message() { return "The other party is not online." }
}
export class PeerBusy extends Schema.TaggedError<PeerBusy>()("PeerBusy", {}) {
  override get message() { return "The other party is in another call." }
}
export class CallNotFound extends Schema.TaggedError<CallNotFound>()("CallNotFound", {}) {
  override get message() { return "No such call for this connection." }
}
export class CallStateInvalid extends Schema.TaggedError<CallStateInvalid>()("CallStateInvalid", {
  state: Schema.String
}) {}

export type ActivationError =
  | ActivationCodeInvalid
  | ActivationCodeExpired
  | ActivationCodeUsed
  | ActivationCodeSuperseded

// Media relay
export class MediaRelayUnavailable extends Schema.TaggedError<MediaRelayUnavailable>()("MediaRelayUnavailable", {}) {
  override get message() { return "The media relay is unavailable right now; try again in a moment." }
}
/** A relay request for a call whose relay this connection has not joined (or must join again after a restart). */
export class RelayNotJoined extends Schema.TaggedError<RelayNotJoined>()("RelayNotJoined", {}) {
  override get message() { return "Join the relay of this call first." }
}

// Conferences
/** No conference of this id that this connection leads (host) or takes part in (customer). */
export class ConferenceNotFound extends Schema.TaggedError<ConferenceNotFound>()("ConferenceNotFound", {}) {
  override get message() { return "No such conference for this connection." }
}
export class ConferenceFull extends Schema.TaggedError<ConferenceFull>()("ConferenceFull", {
  maxParticipants: Schema.Number
}) {
  override get message() { return `A conference has at most ${this.maxParticipants} participants.` }
}
