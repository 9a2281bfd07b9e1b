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
/**
 * A conference's id. It has the form of a call id: a conference's relay room is addressed with it wherever the relay
 * RPCs and events say `callId`.
 */
export const ConferenceId = CallId
export type ConferenceId = CallId

/** Why a customer is no longer in a conference: the host detached its call, it left, or its call ended. */
export const ConferenceLeaveReason = Schema.Literal("detached", "left", "call-ended")
export type ConferenceLeaveReason = typeof ConferenceLeaveReason.Type

/**
 * A customer's call was attached to a conference. To the host device leading it, with the customer's account; to the
 * customer itself, without (it may now join the conference's relay). Customers never hear about each other.
 */
export class ConferenceParticipantJoined extends Schema.TaggedClass<ConferenceParticipantJoined>()("ConferenceParticipantJoined", {
  conferenceId: ConferenceId,
  callId: CallId,
  account: Schema.optional(CustomerId)
}) {}
/** A customer is no longer in a conference (and out of its relay room): to the host, with the account; to the customer. */
export class ConferenceParticipantLeft extends Schema.TaggedClass<ConferenceParticipantLeft>()("ConferenceParticipantLeft", {
  conferenceId: ConferenceId,
  callId: CallId,
  reason: ConferenceLeaveReason,
  account: Schema.optional(CustomerId)
}) {}
/** To the customers still in a conference when it ends: the host ended or left it, or its device went away. */
export class ConferenceEnded extends Schema.TaggedClass<ConferenceEnded>()("ConferenceEnded", {
  conferenceId: ConferenceId,
  reason: Schema.Literal("ended", "host-left")
}) {}
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
  ConferenceParticipantJoined,
  ConferenceParticipantLeft,
  ConferenceEnded,
  AccessRevoked
)
export type LiveEvent = typeof LiveEvent.Type
