/**
 * Loaded into a Chromium page as one device of the product, for the secured call test: the browser SDK (its own
 * WebSocket) enrolls a host device or activates a customer's app against a real server, signs in, and calls or
 * answers; the call is secured with secureCall over `call.signal` and its media run with startCallMedia, their
 * signalling riding the sealed channel. Exposed to page.evaluate as `tesseraDevice`.
 */
import type { Socket } from "@effect/platform"
import { Effect, Exit, Scope } from "effect"
import type { AccountId, CallId, CustomerId } from "../../src/domain/ids.js"
import type { LiveEvent } from "../../src/domain/liveEvents.js"
import * as Sdk from "../../src/sdk/browser.js"

type EventOf<T extends LiveEvent["_tag"]> = Extract<LiveEvent, { readonly _tag: T }>

const scope = Effect.runSync(Scope.make())
let device: Sdk.DeviceSession | undefined
let credentials: Sdk.DeviceCredentials | undefined
let media: Sdk.CallMedia | undefined
let callId: CallId | undefined

const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | Socket.WebSocketConstructor>) =>
  Effect.runPromise(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.BrowserWebSocket)))

const take = <T extends LiveEvent["_tag"]>(tag: T, where: (e: EventOf<T>) => boolean = () => true) =>
  device!.take((e): e is EventOf<T> => e._tag === tag && where(e as EventOf<T>)).pipe(
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`no ${tag} within 30 s`) })
  )

/** Secures the accepted call as `role` and starts its media over the sealed channel. */
const secureMedia = (role: "caller" | "callee", peer: AccountId) =>
  Effect.gen(function*() {
    const keys = yield* Sdk.peerIdentityKeys(device!, peer)
    const call = yield* Sdk.secureCall(device!, { callId: callId!, role, peerIdentityKeys: keys, messages: Sdk.MediaSignal })
    const startedAt = Date.now()
    media = yield* Sdk.startCallMedia({ role, keys: call.media, signalling: Sdk.mediaSignalsOver(call) })
    return { safetyCode: call.safetyCode, startedAt }
  })

const signIn = (url: string, store: Sdk.KeyStore) =>
  Effect.gen(function*() {
    device = yield* Sdk.signIn(credentials!, store, { url })
    yield* device.setReady(true)
  })

const api = {
  /** A host device: enrolls with the operator's code, signs in, creates a customer and issues its activation code. */
  enrollHost: (url: string, enrollmentCode: string) =>
    run(Effect.gen(function*() {
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
    run(Effect.gen(function*() {
      const store = Sdk.memoryKeyStore()
      credentials = yield* Sdk.activateCustomer(url, activationCode, store)
      yield* signIn(url, store)
    })),

  /** The host calls the customer once it is online; media start once the customer accepted and the call is secured. */
  call: (customer: string) =>
    run(Effect.gen(function*() {
      const customerId = customer as CustomerId
      yield* take("PresenceChanged", (e) => e.account === customerId && e.online)
      const invitedAt = Date.now()
      callId = (yield* device!.rpc.call.invite({ peer: customerId })).callId
      yield* take("CallAccepted", (e) => e.callId === callId)
      return { ...(yield* secureMedia("caller", customerId)), invitedAt }
    })),

  /** The customer's app accepts the incoming call and secures it. */
  answer: () =>
    run(Effect.gen(function*() {
      const ring = yield* take("IncomingCall")
      callId = ring.callId
      yield* device!.rpc.call.accept({ callId })
      return yield* secureMedia("callee", ring.from)
    })),

  stats: () => Effect.runPromise(media!.stats),

  /** When (Date.now) getStats first counted a decoded video frame, polling every 50 ms. */
  async firstDecodedFrame(timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if ((await Effect.runPromise(media!.stats)).video.framesDecoded > 0) return Date.now()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return undefined
  },

  /** The call's payloads exactly as the server relayed them to this device, as latin1 text. */
  relayedToMe: () =>
    Effect.runPromise(device!.received.get).then((events) =>
      events.flatMap((e) => (e._tag === "SignalReceived" && e.callId === callId ? [new TextDecoder("latin1").decode(e.payload)] : []))
    ),

  hangUp: () => Effect.runPromise(Scope.close(scope, Exit.void))
}

export type DevicePageApi = typeof api

Object.assign(globalThis, { tesseraDevice: api })
