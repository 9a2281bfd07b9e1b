/**
 * The WebRTC parameters that cross the relay RPCs, as Schemas that mirror mediasoup's types (and what
 * mediasoup-client sends and expects) with every size bounded, so that a client's input is checked before it
 * reaches the worker. Unknown fields are dropped. Pure Schema: the browser SDK imports this with the contract.
 */
import { Schema } from "effect"

const Text = (max: number) => Schema.String.pipe(Schema.minLength(1), Schema.maxLength(max))
const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })
const UInt32 = Schema.Int.pipe(Schema.between(0, 0xffff_ffff))
const PayloadType = Schema.Int.pipe(Schema.between(0, 127))

/** Ids the relay hands out (producers, consumers, transports). */
export const RelayObjectId = Text(64)

export const MediaKind = Schema.Literal("audio", "video")
export type MediaKind = typeof MediaKind.Type

/**
 * Codec or header-extension parameters (fmtp): a few short names with short values. Numbers are finite: NaN or
 * Infinity would pass mediasoup and then turn into null on the way to every consumer of the track.
 */
const CodecParameters = Schema.Record({ key: Schema.String.pipe(Schema.maxLength(64)), value: Schema.Union(Schema.String.pipe(Schema.maxLength(256)), Schema.Finite) }).pipe(
  Schema.filter((record) => Object.keys(record).length <= 16, { message: () => "at most 16 codec parameters" })
)

/** The scalability modes of W3C WebRTC-SVC; mediasoup would take any "L<n>T<n>" and fail every consumer later. */
const ScalabilityMode = Schema.String.pipe(
  Schema.pattern(/^(L[1-3]T[1-3](h|_KEY|_KEY_SHIFT)?|S[1-3]T[1-3]h?)$/, { message: () => "a WebRTC-SVC scalability mode" })
)

const isRtx = (mimeType: string) => mimeType.toLowerCase().endsWith("/rtx")

/**
 * An RTX codec's `apt` names the payload type of another, non-RTX codec of the same list (mediasoup crashes on
 * one that names itself or nothing).
 */
const rtxAssociated = <C extends { readonly mimeType: string; readonly parameters?: { readonly [k: string]: unknown } }>(
  codecs: ReadonlyArray<C>,
  payloadTypeOf: (codec: C) => number | undefined
): boolean =>
  codecs.every((codec) => {
    if (!isRtx(codec.mimeType)) return true
    const apt = codec.parameters?.["apt"]
    return typeof apt === "number" &&
      codecs.some((other) => !isRtx(other.mimeType) && payloadTypeOf(other) === apt)
  })

const RtcpFeedback = Schema.Struct({ type: Text(32), parameter: optional(Schema.String.pipe(Schema.maxLength(32))) })

const RtpCodecParameters = Schema.Struct({
  mimeType: Text(64),
  payloadType: PayloadType,
  clockRate: Schema.Int.pipe(Schema.between(1, 1_000_000)),
  channels: optional(Schema.Int.pipe(Schema.between(1, 8))),
  parameters: optional(CodecParameters),
  rtcpFeedback: optional(Schema.Array(RtcpFeedback).pipe(Schema.maxItems(16)))
})

const RtpHeaderExtensionParameters = Schema.Struct({
  uri: Text(256),
  id: Schema.Int.pipe(Schema.between(1, 255)),
  encrypt: optional(Schema.Boolean),
  parameters: optional(CodecParameters)
})

const RtpEncodingParameters = Schema.Struct({
  ssrc: optional(UInt32),
  rid: optional(Text(32)),
  codecPayloadType: optional(PayloadType),
  rtx: optional(Schema.Struct({ ssrc: UInt32 })),
  dtx: optional(Schema.Boolean),
  scalabilityMode: optional(ScalabilityMode),
  maxBitrate: optional(Schema.Int.pipe(Schema.between(0, 100_000_000)))
})

/** What a sender will send (relay.produce) or a consumer will receive. */
export const RtpParameters = Schema.Struct({
  mid: optional(Text(32)),
  codecs: Schema.Array(RtpCodecParameters).pipe(Schema.minItems(1), Schema.maxItems(16)),
  headerExtensions: optional(Schema.Array(RtpHeaderExtensionParameters).pipe(Schema.maxItems(16))),
  encodings: optional(Schema.Array(RtpEncodingParameters).pipe(Schema.maxItems(4))),
  rtcp: optional(Schema.Struct({ cname: optional(Text(256)), reducedSize: optional(Schema.Boolean) }))
}).pipe(Schema.filter((parameters) => rtxAssociated(parameters.codecs, (codec) => codec.payloadType), {
  message: () => "every RTX codec's apt must name the payload type of another codec in the list"
}))
export type RtpParameters = typeof RtpParameters.Type

const RtpCodecCapability = Schema.Struct({
  kind: MediaKind,
  mimeType: Text(64),
  preferredPayloadType: optional(PayloadType),
  clockRate: Schema.Int.pipe(Schema.between(1, 1_000_000)),
  channels: optional(Schema.Int.pipe(Schema.between(1, 8))),
  parameters: optional(CodecParameters),
  rtcpFeedback: optional(Schema.Array(RtcpFeedback).pipe(Schema.maxItems(16)))
})

const RtpHeaderExtension = Schema.Struct({
  kind: MediaKind,
  uri: Text(256),
  preferredId: Schema.Int.pipe(Schema.between(1, 255)),
  preferredEncrypt: optional(Schema.Boolean),
  direction: optional(Schema.Literal("sendrecv", "sendonly", "recvonly", "inactive"))
})

/** What a device can receive (relay.consume), or what the relay's router can route (relay.join). */
export const RtpCapabilities = Schema.Struct({
  codecs: optional(Schema.Array(RtpCodecCapability).pipe(Schema.maxItems(32))),
  headerExtensions: optional(Schema.Array(RtpHeaderExtension).pipe(Schema.maxItems(32)))
}).pipe(Schema.filter((capabilities) => rtxAssociated(capabilities.codecs ?? [], (codec) => codec.preferredPayloadType), {
  message: () => "every RTX codec's apt must name the preferred payload type of another codec in the list"
}))
export type RtpCapabilities = typeof RtpCapabilities.Type

export const DtlsParameters = Schema.Struct({
  role: optional(Schema.Literal("auto", "client", "server")),
  fingerprints: Schema.Array(Schema.Struct({
    algorithm: Schema.Literal("sha-1", "sha-224", "sha-256", "sha-384", "sha-512"),
    value: Text(192)
  })).pipe(Schema.minItems(1), Schema.maxItems(8))
})
export type DtlsParameters = typeof DtlsParameters.Type

/** A relay transport's ICE credentials: from its join, then fresh ones from each relay.restartIce. */
export const IceParameters = Schema.Struct({ usernameFragment: Text(256), password: Text(256), iceLite: optional(Schema.Boolean) })
export type IceParameters = typeof IceParameters.Type

/** One of the relay's WebRtcTransports, as a client needs it to connect (mediasoup-client's transport options). */
export const RelayTransportParameters = Schema.Struct({
  id: RelayObjectId,
  iceParameters: IceParameters,
  iceCandidates: Schema.Array(Schema.Struct({
    foundation: Text(64),
    priority: UInt32,
    address: Text(256),
    protocol: Schema.Literal("udp", "tcp"),
    port: Schema.Int.pipe(Schema.between(1, 65535)),
    type: Schema.Literal("host"),
    tcpType: optional(Schema.Literal("passive"))
  })).pipe(Schema.maxItems(16)),
  dtlsParameters: DtlsParameters
})
export type RelayTransportParameters = typeof RelayTransportParameters.Type

export const RelayTrack = Schema.Struct({ producerId: RelayObjectId, kind: MediaKind })

/** What joining the relay of a call gives: the router's capabilities, a transport per direction, tracks to consume. */
export const RelayJoined = Schema.Struct({
  routerRtpCapabilities: RtpCapabilities,
  sendTransport: RelayTransportParameters,
  receiveTransport: RelayTransportParameters,
  /** The tracks the other participants already send; later ones come as RelayProducerAdded events. */
  producers: Schema.Array(RelayTrack).pipe(Schema.maxItems(64))
})
export type RelayJoined = typeof RelayJoined.Type

/** A consumer of another participant's track, paused until relay.resumeConsumer. */
export const RelayConsumer = Schema.Struct({
  id: RelayObjectId,
  producerId: RelayObjectId,
  kind: MediaKind,
  rtpParameters: RtpParameters
})
export type RelayConsumer = typeof RelayConsumer.Type
