/**
 * tessera's public API: the RPC groups that the SDK, both web apps and third-party apps use. Payloads are decoded
 * with these schemas at the edge; every expected failure is a typed error from src/domain/errors.ts.
 */
import { Rpc, RpcGroup, RpcMiddleware } from "@effect/rpc"
import { Context, Schema } from "effect"
import { SealedProfile } from "../domain/customer.js"
import { SignedConfig } from "../domain/config.js"
import {
  AccountBusy,
  ActivationCodeExpired,
  ActivationCodeInvalid,
  ActivationCodeSuperseded,
  ActivationCodeUsed,
  CallNotFound,
  CallStateInvalid,
  ChallengeInvalid,
  ConferenceFull,
  ConferenceNotFound,
  ConfigInvalid,
  ConfigRevoked,
  CustomerNotFound,
  EnrollmentCodeInvalid,
  InvalidRequest,
  MediaRelayUnavailable,
  NotPermitted,
  PeerBusy,
  PeerUnavailable,
  RelayNotJoined,
  SignatureInvalid,
  TooManyAttempts,
  Unauthenticated
} from "../domain/errors.js"
import { AccountId, CallId, CustomerId, DeviceId, HostId } from "../domain/ids.js"
import { ConferenceId, LiveEvent } from "../domain/liveEvents.js"
import {
  DtlsParameters,
  IceParameters,
  MediaKind,
  RelayConsumer,
  RelayJoined,
  RelayObjectId,
  RtpCapabilities,
  RtpParameters
} from "../media/RelayParameters.js"
import type { Principal } from "../actors/ConfigFiles.js"

const Code = Schema.String.pipe(Schema.maxLength(64))
/** DER SPKI of an RSA-4096 key is 550 bytes; leave room, refuse anything absurd. */
const PublicKeyBytes = Schema.Uint8ArrayFromSelf.pipe(Schema.filter((b) => b.length > 0 && b.length <= 2048, {
  message: () => "public key too large"
}))
const ValidFor = Schema.optional(Schema.Int.pipe(Schema.between(1, 7 * 24 * 3600)))

// Middleware: which kind of authenticated device may call an RPC.
export class CurrentPrincipal extends Context.Tag("tessera/CurrentPrincipal")<CurrentPrincipal, Principal>() {}
export class CurrentHost extends Context.Tag("tessera/CurrentHost")<
  CurrentHost,
  Extract<Principal, { kind: "host" }>
>() {}
export class CurrentCustomer extends Context.Tag("tessera/CurrentCustomer")<
  CurrentCustomer,
  Extract<Principal, { kind: "customer" }>
>() {}

const AuthFailure = Schema.Union(Unauthenticated, NotPermitted)
export class Authenticated extends RpcMiddleware.Tag<Authenticated>()("tessera/Authenticated", {
  provides: CurrentPrincipal,
  failure: AuthFailure
}) {}
export class HostDevice extends RpcMiddleware.Tag<HostDevice>()("tessera/HostDevice", {
  provides: CurrentHost,
  failure: AuthFailure
}) {}
export class CustomerDevice extends RpcMiddleware.Tag<CustomerDevice>()("tessera/CustomerDevice", {
  provides: CurrentCustomer,
  failure: AuthFailure
}) {}

// Connecting and proving possession of the device key.
export class SessionRpcs extends RpcGroup.make(
  Rpc.make("session.challenge", { success: Schema.Struct({ nonce: Schema.String }) }),
  Rpc.make("session.authenticate", {
    payload: { config: SignedConfig, signature: Schema.Uint8ArrayFromSelf.pipe(Schema.filter((b) => b.length <= 1024)) },
    success: Schema.Struct({ kind: Schema.Literal("host", "customer") }),
    error: Schema.Union(ChallengeInvalid, ConfigInvalid, ConfigRevoked, SignatureInvalid)
  })
) {}

// Redeeming one-time codes; no authentication, rate-limited per client address.
export class OnboardingRpcs extends RpcGroup.make(
  Rpc.make("host.enrollDevice", {
    payload: { enrollmentCode: Code, devicePublicKey: PublicKeyBytes },
    success: SignedConfig,
    error: Schema.Union(EnrollmentCodeInvalid, TooManyAttempts, InvalidRequest, AccountBusy)
  }),
  Rpc.make("customer.activate", {
    payload: { activationCode: Code, devicePublicKey: PublicKeyBytes },
    success: SignedConfig,
    error: Schema.Union(
      ActivationCodeInvalid,
      ActivationCodeExpired,
      ActivationCodeUsed,
      ActivationCodeSuperseded,
      TooManyAttempts,
      InvalidRequest,
      AccountBusy
    )
  })
) {}

export class CustomerSummary extends Schema.Class<CustomerSummary>("CustomerSummary")({
  customerId: CustomerId,
  status: Schema.Literal("created", "code-issued", "active", "revoked"),
  sealedProfile: Schema.String,
  codeExpiresAt: Schema.optional(Schema.Number),
  devicePublicKey: Schema.optional(Schema.String),
  deviceFingerprint: Schema.optional(Schema.String),
  online: Schema.Boolean
}) {}

// The host console's customer management.
export class HostRpcs extends RpcGroup.make(
  Rpc.make("host.createCustomer", {
    payload: { sealedProfile: SealedProfile },
    success: Schema.Struct({ customerId: CustomerId }),
    error: Schema.Union(InvalidRequest, AccountBusy)
  }),
  Rpc.make("host.listCustomers", { success: Schema.Array(CustomerSummary) }),
  Rpc.make("host.issueActivationCode", {
    payload: { customerId: CustomerId, validForSeconds: ValidFor },
    success: Schema.Struct({ code: Schema.String, expiresAt: Schema.Number }),
    error: Schema.Union(CustomerNotFound, InvalidRequest, AccountBusy)
  }),
  Rpc.make("host.revokeActivation", {
    payload: { customerId: CustomerId },
    error: Schema.Union(CustomerNotFound, InvalidRequest, AccountBusy)
  }),
  Rpc.make("host.deleteCustomer", {
    payload: { customerId: CustomerId },
    error: Schema.Union(CustomerNotFound, AccountBusy)
  })
).middleware(HostDevice) {}

export class CustomerRpcs extends RpcGroup.make(
  Rpc.make("customer.host", {
    success: Schema.Struct({ hostId: HostId, identityKeys: Schema.Array(Schema.String), deviceIds: Schema.Array(DeviceId) })
  })
).middleware(CustomerDevice) {}

const CallRef = { callId: CallId }
const CallError = Schema.Union(CallNotFound, CallStateInvalid)

// Presence, calls and signalling: for both kinds of device, towards their counterparts only.
export class LiveRpcs extends RpcGroup.make(
  Rpc.make("live.events", { success: LiveEvent, stream: true }),
  Rpc.make("presence.set", { payload: { ready: Schema.Boolean } }),
  Rpc.make("call.invite", {
    payload: { peer: AccountId },
    success: Schema.Struct({ callId: CallId }),
    error: Schema.Union(NotPermitted, PeerUnavailable, PeerBusy)
  }),
  Rpc.make("call.accept", { payload: CallRef, error: CallError }),
  Rpc.make("call.decline", {
    payload: { callId: CallId, reason: Schema.Literal("declined", "busy") },
    error: CallError
  }),
  Rpc.make("call.cancel", { payload: CallRef, error: CallError }),
  Rpc.make("call.hangUp", { payload: CallRef, error: CallNotFound }),
  // The size is checked by the handler, so that a payload out of bounds gets a typed InvalidRequest (the transport's
  // frame limit still bounds what can arrive at all).
  Rpc.make("call.signal", {
    payload: { callId: CallId, payload: Schema.Uint8ArrayFromSelf },
    error: Schema.Union(CallNotFound, CallStateInvalid, InvalidRequest)
  })
).middleware(Authenticated) {}

const RelayError = Schema.Union(RelayNotJoined, InvalidRequest, MediaRelayUnavailable)
const TransportDirection = Schema.Literal("send", "receive")

// The mediasoup relay of an accepted call, for its two parties only (mediasoup-client's signalling).
export class MediaRpcs extends RpcGroup.make(
  Rpc.make("relay.join", {
    payload: CallRef,
    success: RelayJoined,
    error: Schema.Union(NotPermitted, CallStateInvalid, MediaRelayUnavailable)
  }),
  Rpc.make("relay.connectTransport", {
    payload: { callId: CallId, direction: TransportDirection, dtlsParameters: DtlsParameters },
    error: RelayError
  }),
  // Fresh ICE credentials for one of the caller's transports, e.g. after its network changed (an ICE restart).
  Rpc.make("relay.restartIce", {
    payload: { callId: CallId, direction: TransportDirection },
    success: Schema.Struct({ iceParameters: IceParameters }),
    error: RelayError
  }),
  Rpc.make("relay.produce", {
    payload: { callId: CallId, kind: MediaKind, rtpParameters: RtpParameters },
    success: Schema.Struct({ producerId: RelayObjectId }),
    error: RelayError
  }),
  Rpc.make("relay.consume", {
    payload: { callId: CallId, producerId: RelayObjectId, rtpCapabilities: RtpCapabilities },
    success: RelayConsumer,
    error: RelayError
  }),
  Rpc.make("relay.resumeConsumer", { payload: { callId: CallId, consumerId: RelayObjectId }, error: RelayError }),
  Rpc.make("relay.leave", { payload: CallRef })
).middleware(Authenticated) {}

const ConferenceRef = { conferenceId: ConferenceId }
const ConferenceCallRef = { conferenceId: ConferenceId, callId: CallId }

/**
 * Host-led conferences: the leading host device creates one and attaches its accepted calls; their customers then
 * join the conference's relay room with the relay RPCs above, the conference id as `callId`. The media keys travel
 * end to end over each participant's secured call, never through these.
 */
export class ConferenceRpcs extends RpcGroup.make(
  Rpc.make("conference.create", {
    success: Schema.Struct({ conferenceId: ConferenceId }),
    error: InvalidRequest
  }).middleware(HostDevice),
  Rpc.make("conference.attach", {
    payload: ConferenceCallRef,
    error: Schema.Union(ConferenceNotFound, CallNotFound, CallStateInvalid, ConferenceFull)
  }).middleware(HostDevice),
  Rpc.make("conference.detach", {
    payload: ConferenceCallRef,
    error: Schema.Union(ConferenceNotFound, CallNotFound)
  }).middleware(HostDevice),
  Rpc.make("conference.end", { payload: ConferenceRef, error: ConferenceNotFound }).middleware(HostDevice),
  // A customer leaves (its call goes on); the leading host leaving ends the conference.
  Rpc.make("conference.leave", { payload: ConferenceRef, error: ConferenceNotFound }).middleware(Authenticated)
) {}

export const TesseraRpcs = SessionRpcs.merge(OnboardingRpcs, HostRpcs, CustomerRpcs, LiveRpcs, MediaRpcs, ConferenceRpcs)
export type TesseraRpcs = typeof TesseraRpcs
