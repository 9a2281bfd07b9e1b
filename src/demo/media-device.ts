/**
 * One device of the product in a Chromium page, for `npm run demo -- --media` (and the relayed-call tests, which
 * add their own hooks): the browser SDK enrolls a host device or activates a customer's app against a server and
 * signs in once; then any number of calls, each secured with secureCall over `call.signal` and its media started
 * with startCallMedia under a policy ("auto", "p2p", "relay") with the call's relay (the device's relay RPCs and
 * live events). Keys live in memory only. Runs in the browser; media-entry.ts exposes it to the coordinator.
 */
import type { Socket } from "@effect/platform"
import { Effect, Exit, Scope, SubscriptionRef } from "effect"
import { SFRAME_KID } from "../crypto/session.js"
import { SFrameReceiver } from "../crypto/sframe.js"
import type { AccountId, CallId, CustomerId } from "../domain/ids.js"
import type { LiveEvent } from "../domain/liveEvents.js"
import * as Sdk from "../sdk/browser.js"

type EventOf<T extends LiveEvent["_tag"]> = Extract<LiveEvent, { readonly _tag: T }>

export interface CallOptions {
  readonly mode: Sdk.CallMediaPolicy
  /** This side receives with a key of its own instead of the call's: every frame it receives must be dropped. */
  readonly wrongReceiveKey?: boolean
  /**
   * Peer to peer cannot connect from this side: its RTCPeerConnection may use TURN candidates only, and there is
   * no TURN server. As behind a firewall that lets nothing but the server through.
   */
  readonly blockPeerToPeer?: boolean
  readonly p2pTimeoutMs?: number
}

export type CallOutcome =
  | { readonly safetyCode: string; readonly startedAt: number }
  | { readonly error: string }

const deviceScope = Effect.runSync(Scope.make())
let device: Sdk.DeviceSession | undefined
let credentials: Sdk.DeviceCredentials | undefined
let callScope: Scope.CloseableScope | undefined
let media: Sdk.CallMedia | undefined

const inScope = <A, E>(scope: Scope.Scope, effect: Effect.Effect<A, E, Scope.Scope | Socket.WebSocketConstructor>) =>
  Effect.runPromise(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.BrowserWebSocket)))

const take = <T extends LiveEvent["_tag"]>(tag: T, where: (e: EventOf<T>) => boolean = () => true) =>
  device!.take((e): e is EventOf<T> => e._tag === tag && where(e as EventOf<T>)).pipe(
    Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`no ${tag} within 60 s`) })
  )

/** A receiver holding a random key under the peer's key id: nothing the peer sends opens with it. */
const wrongKeys = (keys: Sdk.MediaKeys, role: "caller" | "callee"): Sdk.MediaKeys => ({
  ...keys,
  createReceiver: (options) =>
    Effect.promise(async () => {
      const receiver = new SFrameReceiver({ ...options, suite: keys.suite })
      await receiver.addKey(SFRAME_KID[role === "caller" ? "callee" : "caller"], crypto.getRandomValues(new Uint8Array(32)))
      return receiver
    })
})

/** Secures the accepted call as `role` and starts its media over the sealed channel, with the call's relay. */
const secureMedia = (role: "caller" | "callee", callId: CallId, peer: AccountId, options: CallOptions) =>
  Effect.gen(function*() {
    const keys = yield* Sdk.peerIdentityKeys(device!, peer)
    const call = yield* Sdk.secureCall(device!, { callId, role, peerIdentityKeys: keys, messages: Sdk.MediaSignal })
    const startedAt = Date.now()
    const common = {
      role,
      keys: options.wrongReceiveKey ? wrongKeys(call.media, role) : call.media,
      signalling: Sdk.mediaSignalsOver(call),
      ...(options.blockPeerToPeer ? { iceTransportPolicy: "relay" as const } : {})
    }
    media = yield* Sdk.startCallMedia(
      options.mode === "p2p"
        ? { ...common, mode: "p2p" }
        : {
          ...common,
          mode: options.mode,
          relay: { callId, device: device! },
          ...(options.p2pTimeoutMs ? { p2pTimeout: options.p2pTimeoutMs } : {})
        }
    )
    return { safetyCode: call.safetyCode, startedAt }
  })

/** Runs one call's set-up in a fresh call scope; a typed failure comes back as its tag. */
const startCall = (setUp: Effect.Effect<{ readonly safetyCode: string; readonly startedAt: number }, unknown, Scope.Scope | Socket.WebSocketConstructor>) =>
  Effect.runPromise(Effect.gen(function*() {
    callScope = yield* Scope.make()
    const exit = yield* Effect.exit(setUp.pipe(Scope.extend(callScope), Effect.provide(Sdk.BrowserWebSocket)))
    if (Exit.isSuccess(exit)) return exit.value as CallOutcome
    const failure = exit.cause._tag === "Fail" ? (exit.cause.error as { readonly _tag?: string }) : undefined
    return { error: failure?._tag ?? "defect" } as CallOutcome
  }))

const signIn = (url: string, store: Sdk.KeyStore) =>
  Effect.gen(function*() {
    device = yield* Sdk.signIn(credentials!, store, { url })
    yield* device.setReady(true)
  })

export const mediaDevice = {
  /** A host device: enrolls with the operator's code, signs in, creates a customer and issues its activation code. */
  enrollHost: (url: string, enrollmentCode: string) =>
    inScope(deviceScope, Effect.gen(function*() {
      const store = Sdk.memoryKeyStore()
      credentials = yield* Sdk.enrollHostDevice(url, enrollmentCode, store)
      yield* signIn(url, store)
      const sealedProfile = yield* Effect.promise(() =>
        Sdk.sealProfile(credentials!.profileKey!, { name: "Erika Mustermann", customerNumber: "K-4711" })
      )
      const { customerId } = yield* device!.rpc.host.createCustomer({ sealedProfile })
      const { code } = yield* device!.rpc.host.issueActivationCode({ customerId })
      return { customerId: customerId as string, activationCode: code }
    })),

  /** A customer's app: activates with the practice's code and signs in. */
  activate: (url: string, activationCode: string) =>
    inScope(deviceScope, Effect.gen(function*() {
      const store = Sdk.memoryKeyStore()
      credentials = yield* Sdk.activateCustomer(url, activationCode, store)
      yield* signIn(url, store)
    })),

  /** The host waits until the customer is online. */
  awaitOnline: (customer: string) =>
    inScope(deviceScope, Effect.asVoid(take("PresenceChanged", (e) => e.account === (customer as CustomerId) && e.online))),

  /** The host calls the customer; media start once the customer accepted and the call is secured. */
  call: (customer: string, options: CallOptions) =>
    startCall(Effect.gen(function*() {
      const customerId = customer as CustomerId
      const { callId } = yield* device!.rpc.call.invite({ peer: customerId })
      yield* take("CallAccepted", (e) => e.callId === callId)
      return yield* secureMedia("caller", callId, customerId, options)
    })),

  /** The customer's app accepts the next incoming call and secures it. */
  answer: (options: CallOptions) =>
    startCall(Effect.gen(function*() {
      const ring = yield* take("IncomingCall")
      yield* device!.rpc.call.accept({ callId: ring.callId })
      return yield* secureMedia("callee", ring.callId, ring.from, options)
    })),

  stats: () => Effect.runPromise(media!.stats),

  /** New ICE candidates on the call's path, as after a network change (the SDK does it on its own for those). */
  restartIce: () => Effect.runPromise(media!.restartIce),

  /** The path the media take now, their connection, and why they ended if they did. */
  mediaState: () => Effect.runPromise(SubscriptionRef.get(media!.state)),

  /** The path the media connected on, or why they failed. */
  awaitConnected: (timeoutMs: number) =>
    Effect.runPromise(media!.awaitConnected.pipe(
      Effect.map((mode) => ({ connected: mode })),
      Effect.catchAll((e) => Effect.succeed(e.peerReason ? { failed: e.reason, peerReason: e.peerReason } : { failed: e.reason })),
      Effect.timeoutTo({ duration: timeoutMs, onTimeout: () => ({ failed: "timed out" }), onSuccess: (r) => r })
    )),

  /** When (Date.now) getStats first counted a decoded video frame, polling every `intervalMs`. */
  async firstDecodedFrame(timeoutMs: number, intervalMs = 50): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if ((await Effect.runPromise(media!.stats)).video.framesDecoded > 0) return Date.now()
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    return undefined
  },

  /** Ends this side's call: hangs up, leaves the relay, destroys the keys. */
  async hangUp() {
    if (callScope) await Effect.runPromise(Scope.close(callScope, Exit.void))
    callScope = undefined
    media = undefined
  }
}

export type MediaDevice = typeof mediaDevice
