/**
 * What both demo client processes share: one long-lived scope for the device's connection (so that a signed-in
 * session outlives the command that opened it), the Node WebSocket, and small helpers over the SDK's live events.
 */
import type { Socket } from "@effect/platform"
import { Effect, Exit, Schema, Scope } from "effect"
import { randomBytes } from "node:crypto"
import type { LiveEvent, SignalReceived } from "../domain/liveEvents.js"
import type { AccountId, CallId } from "../domain/ids.js"
import * as Sdk from "../sdk/node.js"
import { runToPromise } from "./ipc.js"

export interface DeviceRuntime {
  /** Runs an SDK effect; what it opens in its scope stays open until `close`. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Scope.Scope | Socket.WebSocketConstructor>) => Promise<A>
  /** Closes every connection the device opened. */
  readonly close: () => Promise<void>
}

export const deviceRuntime = (): DeviceRuntime => {
  const scope = Effect.runSync(Scope.make())
  return {
    run: (effect) => runToPromise(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.NodeWebSocket))),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export class ConnectionEnded extends Error {}

/** The next live event that matches; fails with a readable error when the connection closes first. */
export const takeEvent = <A extends LiveEvent>(session: Sdk.DeviceSession, match: (event: LiveEvent) => event is A) =>
  session.take(match).pipe(
    Effect.catchAll((closed) => Effect.fail(new ConnectionEnded(`the connection closed (code ${closed.code}) first`)))
  )

/** Fails with `message` unless `condition` holds. */
export const check = (condition: boolean, message: string): Effect.Effect<void, Error> =>
  condition ? Effect.void : Effect.fail(new Error(message))

/** Loads a device's credentials from its key store, as the app does when it starts. */
export const loadCredentials = (store: Sdk.KeyStore) =>
  Effect.flatMap(Effect.promise(() => store.load()), (credentials) =>
    credentials === undefined ? Effect.fail(new Error("the key store is empty")) : Effect.succeed(credentials))

// ---------------------------------------------------------------------------------------------------------------
// The call, secured end to end by the SDK (CallSecurity.ts): a handshake over call.signal, then sealed messages.

/** What the demo's two apps exchange over the sealed channel: the WebRTC negotiation a real app would send. */
export const DemoSignal = Schema.Union(
  Schema.Struct({ type: Schema.Literal("sdp"), kind: Schema.Literal("offer", "answer"), sdp: Schema.String }),
  Schema.Struct({ type: Schema.Literal("ice"), candidate: Schema.String })
)
export type DemoSignal = typeof DemoSignal.Type

/**
 * A session description and two ICE candidates of the usual shape, with fresh credentials and a fresh DTLS
 * fingerprint: exactly what the server must neither read nor swap. (The addresses are from the documentation range.)
 */
export const negotiationMessages = (kind: "offer" | "answer"): ReadonlyArray<DemoSignal> => {
  const ufrag = randomBytes(6).toString("hex")
  const fingerprint = Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":")
  const sdp = [
    "v=0",
    `o=- ${randomBytes(6).readUIntBE(0, 6)} 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${randomBytes(12).toString("hex")}`,
    `a=fingerprint:sha-256 ${fingerprint}`,
    `a=setup:${kind === "offer" ? "actpass" : "active"}`,
    "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "a=rtpmap:96 VP8/90000",
    ""
  ].join("\r\n")
  return [
    { type: "sdp", kind, sdp },
    { type: "ice", candidate: `candidate:1 1 udp 2122260223 192.0.2.${kind === "offer" ? 10 : 20} 54400 typ host ufrag ${ufrag}` },
    { type: "ice", candidate: `candidate:2 1 udp 1686052607 198.51.100.7 61000 typ srflx ufrag ${ufrag}` }
  ]
}

/** The call's handshake as `role`, against the peer's identity keys as this device learnt them. */
export const secureDemoCall = (session: Sdk.DeviceSession, callId: CallId, role: "caller" | "callee", peer: AccountId) =>
  Effect.gen(function*() {
    const peerIdentityKeys = yield* Sdk.peerIdentityKeys(session, peer)
    return yield* Sdk.secureCall(session, {
      callId,
      role,
      peerIdentityKeys,
      messages: DemoSignal,
      // Two RSA-4096 signatures and a 3072-bit exchange on each side: slow on a loaded machine.
      handshakeTimeout: "90 seconds"
    })
  })

/** The next `count` sealed messages; a dropped (rejected) payload fails, since nothing here tampers with the call. */
export const receiveMessages = (call: Sdk.SecureCall<DemoSignal>, count: number) =>
  Effect.forEach(Array.from({ length: count }), () => call.receive)

/**
 * Whether any payload relayed on the call (what the server saw) shows the messages' text: the SDP, the DTLS
 * fingerprint or a candidate's address.
 */
export const relayedPlaintext = (session: Sdk.DeviceSession, callId: CallId, messages: ReadonlyArray<DemoSignal>) =>
  Effect.map(session.received.get, (events) => {
    const needles = messages.flatMap((message) =>
      message.type === "sdp"
        ? [message.sdp, ...message.sdp.split("\r\n").filter((line) => line.startsWith("a=fingerprint") || line.startsWith("a=ice-pwd"))]
        : [message.candidate, message.candidate.split(" ")[4]!]
    ).map((text) => Buffer.from(text, "utf8"))
    const payloads = events.filter((e): e is SignalReceived => e._tag === "SignalReceived" && e.callId === callId)
    return {
      relayed: payloads.length,
      plaintext: payloads.some((e) => needles.some((needle) => Buffer.from(e.payload).includes(needle)))
    }
  })

/** After the end of a call: its keys are gone, so no media context can be made under them any more. */
export const keysDestroyed = (call: Sdk.SecureCall<DemoSignal>) =>
  Effect.map(Effect.either(call.media.createSender), (made) => made._tag === "Left" && made.left._tag === "KeysDestroyed")
