/**
 * Loaded into a Chromium page as one device of a conference, for the conference tests and bench: the browser SDK
 * enrolls a host device (which creates customers) or activates a customer's app, signs in once, secures calls over
 * `call.signal`; the host leads a conference and attaches calls, a customer joins when its call is attached; both
 * run startConferenceMedia. Keys live in memory only. Exposed to page.evaluate as `tesseraConferenceDevice`.
 */
import type { Socket } from "@effect/platform"
import { Effect, Exit, Scope, SubscriptionRef } from "effect"
import type { CallId, CustomerId } from "../../src/domain/ids.js"
import type { ConferenceId, LiveEvent } from "../../src/domain/liveEvents.js"
import * as Sdk from "../../src/sdk/browser.js"

type EventOf<T extends LiveEvent["_tag"]> = Extract<LiveEvent, { readonly _tag: T }>

export type Outcome<A = object> = A | { readonly error: string }

export interface ParticipantReport {
  readonly slot: number
  readonly kinds: ReadonlyArray<string>
  readonly framesDecoded: number
  readonly audioPacketsReceived: number
  readonly opened: number
  readonly dropped: number
}

export interface ConferencePageReport {
  readonly state: Sdk.ConferenceMediaState
  readonly epoch: number | undefined
  readonly slot: number | undefined
  readonly participants: ReadonlyArray<ParticipantReport>
  readonly sent: Sdk.ConferenceMediaStats["sent"]
  readonly received: Sdk.ConferenceMediaStats["received"]
  readonly framesEncoded: number
  readonly relayJoins: number
  readonly muted: Sdk.ConferenceMediaStats["muted"]
  /** The local camera track's id, to tell a switched camera from the first (compared, never printed). */
  readonly cameraTrack: string | undefined
  /** Captured tracks still live. */
  readonly liveLocalTracks: number
}

const deviceScope = Effect.runSync(Scope.make())
let device: Sdk.DeviceSession | undefined
let credentials: Sdk.DeviceCredentials | undefined
let conferenceScope: Scope.CloseableScope | undefined
let hosted: Sdk.HostedConference | undefined
let member: Sdk.ConferenceMember | undefined
let media: Sdk.ConferenceMedia | undefined
/** The host's secured calls by customer; a customer's one call with its host. */
const calls = new Map<string, Sdk.SecureCall<Sdk.ConferenceKey>>()
let hostCall: Sdk.SecureCall<unknown> | undefined
let captures = 0

const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | Socket.WebSocketConstructor>, scope: Scope.Scope = deviceScope) =>
  Effect.runPromise(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.BrowserWebSocket)))

/** Runs a step; a typed failure comes back as its tag. */
const attempt = <A>(effect: Effect.Effect<A, unknown, Scope.Scope | Socket.WebSocketConstructor>, scope: Scope.Scope = deviceScope) =>
  Effect.runPromise(Effect.exit(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.BrowserWebSocket)))).then((exit): Outcome<A> => {
    if (Exit.isSuccess(exit)) return exit.value
    const failure = exit.cause._tag === "Fail" ? (exit.cause.error as { readonly _tag?: string }) : undefined
    return { error: failure?._tag ?? "defect" }
  })

const take = <T extends LiveEvent["_tag"]>(tag: T, where: (e: EventOf<T>) => boolean = () => true) =>
  device!.take((e): e is EventOf<T> => e._tag === tag && where(e as EventOf<T>)).pipe(
    Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error(`no ${tag} within 90 s`) })
  )

const signIn = (url: string, store: Sdk.KeyStore) =>
  Effect.gen(function*() {
    device = yield* Sdk.signIn(credentials!, store, { url })
    yield* device.setReady(true)
  })

const ensureConferenceScope = () => (conferenceScope ??= Effect.runSync(Scope.make()))

/** Starts this device's conference media, within the conference's scope. */
const startMedia = (conferenceId: ConferenceId, keys: Sdk.ConferenceKeys, left: Effect.Effect<unknown>) =>
  Effect.gen(function*() {
    media = yield* Sdk.startConferenceMedia({ device: device!, conferenceId, keys, left })
  })

const report = async (): Promise<ConferencePageReport> => {
  const stats = await Effect.runPromise(media!.stats)
  const shown = await Effect.runPromise(SubscriptionRef.get(media!.participants))
  return {
    state: await Effect.runPromise(SubscriptionRef.get(media!.state)),
    epoch: stats.epoch,
    slot: stats.slot,
    participants: stats.participants.map((p) => ({
      slot: p.slot,
      kinds: (shown.find((s) => s.slot === p.slot)?.stream.getTracks() ?? []).map((t) => t.kind).sort(),
      framesDecoded: p.video.framesDecoded,
      audioPacketsReceived: p.audio.packetsReceived,
      opened: p.received.audio.protected + p.received.video.protected,
      dropped: p.received.audio.dropped + p.received.video.dropped
    })),
    sent: stats.sent,
    received: stats.received,
    framesEncoded: stats.video.framesEncoded,
    relayJoins: stats.relayJoins,
    muted: stats.muted,
    cameraTrack: media!.localStream.getVideoTracks()[0]?.id,
    liveLocalTracks: media!.localStream.getTracks().filter((t) => t.readyState === "live").length
  }
}

// Counts captures, so that a refusal can be shown to come before any.
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices)
navigator.mediaDevices.getUserMedia = (constraints) => {
  captures++
  return realGetUserMedia(constraints)
}

const api = {
  /** A host device: enrolls with the operator's code and signs in. */
  enrollHost: (url: string, enrollmentCode: string) =>
    run(Effect.gen(function*() {
      const store = Sdk.memoryKeyStore()
      credentials = yield* Sdk.enrollHostDevice(url, enrollmentCode, store)
      yield* signIn(url, store)
    })),

  /** The host creates a customer and issues its activation code. */
  addCustomer: (name: string) =>
    run(Effect.gen(function*() {
      const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(credentials!.profileKey!, { name, customerNumber: `K-${name}` }))
      const { customerId } = yield* device!.rpc.host.createCustomer({ sealedProfile })
      const { code } = yield* device!.rpc.host.issueActivationCode({ customerId })
      return { customerId: customerId as string, activationCode: code }
    })),

  /** A customer's app: activates with the practice's code and signs in. */
  activate: (url: string, activationCode: string) =>
    run(Effect.gen(function*() {
      const store = Sdk.memoryKeyStore()
      credentials = yield* Sdk.activateCustomer(url, activationCode, store)
      yield* signIn(url, store)
    })),

  awaitOnline: (customer: string) =>
    run(Effect.asVoid(take("PresenceChanged", (e) => e.account === (customer as CustomerId) && e.online))),

  /** The host calls the customer and secures the call once accepted. */
  callAndSecure: (customer: string) =>
    attempt(Effect.gen(function*() {
      const customerId = customer as CustomerId
      const { callId } = yield* device!.rpc.call.invite({ peer: customerId })
      yield* take("CallAccepted", (e) => e.callId === callId)
      const peerIdentityKeys = yield* Sdk.peerIdentityKeys(device!, customerId)
      const call = yield* Sdk.secureCall(device!, { callId, role: "caller", peerIdentityKeys, messages: Sdk.ConferenceKey })
      calls.set(customer, call)
      return { safetyCode: call.safetyCode }
    })),

  /** The customer's app accepts the next incoming call and secures it. */
  answerAndSecure: () =>
    attempt(Effect.gen(function*() {
      const ring = yield* take("IncomingCall")
      yield* device!.rpc.call.accept({ callId: ring.callId })
      const peerIdentityKeys = yield* Sdk.peerIdentityKeys(device!, ring.from)
      hostCall = yield* Sdk.secureCall(device!, { callId: ring.callId, role: "callee", peerIdentityKeys })
      return { safetyCode: hostCall.safetyCode }
    })),

  /** The host leads a conference and starts its media in it. */
  lead: () =>
    attempt(Effect.gen(function*() {
      hosted = yield* Sdk.leadConference(device!)
      yield* startMedia(hosted.conferenceId, hosted, hosted.ended)
      return {}
    }), ensureConferenceScope()),

  /** The host attaches its call with the customer; `attachedAt` is Date.now() just before. */
  attach: (customer: string) =>
    attempt(Effect.gen(function*() {
      const attachedAt = Date.now()
      yield* hosted!.attach(calls.get(customer)!)
      return { attachedAt }
    })),

  detach: (customer: string) => attempt(Effect.as(hosted!.detach(calls.get(customer)!.callId as CallId), {})),

  /**
   * The customer waits until its call is attached, joins the conference and starts its media in it. A member reads
   * its call with the host until its scope closes, so the one of an earlier join is closed first.
   */
  joinWhenAttached: async () => {
    await api.close()
    return attempt(Effect.gen(function*() {
      const joined = yield* take("ConferenceParticipantJoined", (e) => e.callId === hostCall!.callId)
      member = yield* Sdk.joinConference(device!, { conferenceId: joined.conferenceId, call: hostCall! })
      yield* startMedia(joined.conferenceId, member, member.left)
      return { joinedAt: Date.now() }
    }), ensureConferenceScope())
  },

  /** The customer leaves the conference (its call with the host goes on). */
  leave: () => Effect.runPromise(member!.leave),

  report,

  setMuted: (kind: Sdk.MediaKind, muted: boolean) => Effect.runPromise(media!.setMuted(kind, muted)),

  switchCamera: () => attempt(Effect.as(media!.switchCamera(), {})),

  awaitConnected: (timeoutMs: number) =>
    Effect.runPromise(media!.awaitConnected.pipe(
      Effect.as({ connected: true as const }),
      Effect.catchAll((e) => Effect.succeed({ failed: e.reason })),
      Effect.timeoutTo({ duration: timeoutMs, onTimeout: () => ({ failed: "timed out" }), onSuccess: (r) => r })
    )),

  /**
   * When (Date.now) video frames were first decoded from `count` distinct slots: the first of them and the last,
   * polling every `intervalMs`; undefined for those not reached within the timeout.
   */
  async awaitDecoding(count: number, timeoutMs: number, intervalMs = 50) {
    const deadline = Date.now() + timeoutMs
    const firstAt = new Map<number, number>()
    while (Date.now() < deadline && firstAt.size < count) {
      for (const p of (await Effect.runPromise(media!.stats)).participants) {
        if (p.video.framesDecoded > 0 && !firstAt.has(p.slot)) firstAt.set(p.slot, Date.now())
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    const times = [...firstAt.values()]
    return {
      first: times.length > 0 ? Math.min(...times) : undefined,
      all: firstAt.size >= count ? Math.max(...times) : undefined
    }
  },

  /**
   * This page's browser no longer hands encoded frames to script (as one without encoded transforms): starts the
   * conference's media again and says how that ended and how many captures it made.
   */
  startWithoutEncodedTransform: async () => {
    const prototypes = [(globalThis as Record<string, any>)["RTCRtpSender"].prototype, (globalThis as Record<string, any>)["RTCRtpReceiver"].prototype]
    for (const prototype of prototypes) delete prototype.createEncodedStreams
    const keys = member ?? hosted!
    const before = captures
    const outcome = await attempt(
      Effect.as(Sdk.startConferenceMedia({ device: device!, conferenceId: keys.conferenceId, keys }), {}),
      Effect.runSync(Scope.make())
    )
    return { outcome, captures: captures - before }
  },

  /** Ends this device's part: media, conference (the host ends it, a customer leaves). */
  async close() {
    if (conferenceScope) await Effect.runPromise(Scope.close(conferenceScope, Exit.void))
    conferenceScope = undefined
  }
}

export type ConferenceDevicePageApi = typeof api

Object.assign(globalThis, { tesseraConferenceDevice: api })
