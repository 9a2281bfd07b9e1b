/**
 * What the server pushes to a connected device on its event stream. Presence, calls and signalling exist only in
 * memory and only on this stream; none of it is ever stored.
 */
import { Schema } from "effect"
import { AccountId, CallId, CustomerId } from "./ids.js"

export const MAX_SIGNAL_BYTES = 48 * 1024

/** First event on every subscription: from here on nothing addressed to this device is missed. */
export class EventsStarted extends Schema.TaggedClass<EventsStarted>()("EventsStarted", {}) {}
export class PresenceChanged extends Schema.TaggedClass<PresenceChanged>()("PresenceChanged", {
  account: AccountId,
  online: Schema.Boolean
}) {}
/** To the host's devices: a customer has just activated its app. */
export class CustomerActivatedNotice extends Schema.TaggedClass<CustomerActivatedNotice>()("CustomerActivatedNotice", {
  customerId: CustomerId
}) {}
/** The device should ring: someone calls. */
export class IncomingCall extends Schema.TaggedClass<IncomingCall>()("IncomingCall", {
  callId: CallId,
  from: AccountId
}) {}
export class CallAccepted extends Schema.TaggedClass<CallAccepted>()("CallAccepted", { callId: CallId }) {}

export const CallEndReason = Schema.Literal(
  "declined",
  "busy",
  "cancelled",
  "no-answer",
  "hung-up",
  "answered-elsewhere",
  "disconnected",
  "access-revoked"
)
export type CallEndReason = typeof CallEndReason.Type

export class CallEnded extends Schema.TaggedClass<CallEnded>()("CallEnded", {
  callId: CallId,
  reason: CallEndReason
}) {}
/** An opaque, end-to-end encrypted signalling payload from the other party of the call. */
export class SignalReceived extends Schema.TaggedClass<SignalReceived>()("SignalReceived", {
  callId: CallId,
  payload: Schema.Uint8ArrayFromSelf
}) {}
/** The other party of a relayed call started sending a track: consume it with relay.consume. */
export class RelayProducerAdded extends Schema.TaggedClass<RelayProducerAdded>()("RelayProducerAdded", {
  callId: CallId,
  producerId: Schema.String,
  kind: Schema.Literal("audio", "video")
}) {}
/** A track of the other party ended (it left, rejoined or closed it); its consumer is gone. */
export class RelayProducerClosed extends Schema.TaggedClass<RelayProducerClosed>()("RelayProducerClosed", {
  callId: CallId,
  producerId: Schema.String
}) {}
/** The relay of the call was re-created after a failure: its transports are gone, join it again. */
export class RelayRestarted extends Schema.TaggedClass<RelayRestarted>()("RelayRestarted", { callId: CallId }) {}
/** The relay of the call failed and could not be re-created: there is no relayed media for this call now. */
export class RelayFailed extends Schema.TaggedClass<RelayFailed>()("RelayFailed", { callId: CallId }) {}
/** Last event before the server closes a revoked or deleted customer's connection. */
export class AccessRevoked extends Schema.TaggedClass<AccessRevoked>()("AccessRevoked", {}) {}

export const LiveEvent = Schema.Union(
  EventsStarted,
  PresenceChanged,
  CustomerActivatedNotice,
  IncomingCall,
  CallAccepted,
  CallEnded,
  SignalReceived,
  RelayProducerAdded,
  RelayProducerClosed,
  RelayRestarted,
  RelayFailed,
  AccessRevoked
)
export type LiveEvent = typeof LiveEvent.Type
