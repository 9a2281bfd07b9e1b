/**
 * A signed-in device: an authenticated connection, its live event stream, and what the device can do with it.
 *
 * Signing in answers the server's fresh challenge with the device key. A config the server refuses as revoked (the
 * account was revoked or deleted), or an AccessRevoked event / close code 4001 on an open connection, clears the key
 * store: the device is then as after an uninstall and has to be activated again.
 */
import { Deferred, Effect, Option, Stream, SubscriptionRef } from "effect"
import { utf8Bytes } from "../crypto/bytes.js"
import { signWithIdentity } from "../crypto/identity.js"
import { authenticationMessage } from "../domain/config.js"
import type { LiveEvent } from "../domain/liveEvents.js"
import { CLOSE_ACCESS_REVOKED, type Connection, type ConnectionClosed, openConnection } from "./Connection.js"
import type { DeviceCredentials, KeyStore } from "./KeyStore.js"

export interface DeviceSession {
  readonly kind: "host" | "customer"
  readonly credentials: DeviceCredentials
  readonly rpc: Connection["rpc"]
  /** Every live event received so far, in order (presence, calls, signalling). Memory only. */
  readonly received: SubscriptionRef.SubscriptionRef<ReadonlyArray<LiveEvent>>
  /**
   * The first event not yet taken that matches, waiting for it if need be; taken events are not handed out again.
   * Fails with the close when the connection ends first.
   */
  readonly take: <A extends LiveEvent>(match: (event: LiveEvent) => event is A) => Effect.Effect<A, ConnectionClosed>
  /** Completes when the connection closes; `revoked` when the server ended this device's access. */
  readonly closed: Deferred.Deferred<ConnectionClosed & { readonly revoked: boolean }>
  /** Says whether the app is open and ready (presence). */
  readonly setReady: (ready: boolean) => Effect.Effect<void>
}

export interface SignInOptions {
  /** Overrides the server address from the config file (e.g. a test server on another port). */
  readonly url?: string
}

export const signIn = (credentials: DeviceCredentials, store: KeyStore, options: SignInOptions = {}) =>
  Effect.gen(function*() {
    const url = options.url ?? credentials.config.body.serverAddress
    const connection = yield* openConnection(url)
    const { nonce } = yield* connection.rpc.session.challenge()
    const signature = yield* Effect.promise(() =>
      signWithIdentity(credentials.keys.privateKey, utf8Bytes(authenticationMessage(nonce, credentials.config.body.deviceFingerprint)))
    )
    const { kind } = yield* connection.rpc.session.authenticate({ config: credentials.config, signature }).pipe(
      Effect.tapError((error) => error._tag === "ConfigRevoked" ? Effect.promise(() => store.clear()) : Effect.void)
    )

    const received = yield* SubscriptionRef.make<ReadonlyArray<LiveEvent>>([])
    const taken = new Set<number>()
    const closed = yield* Deferred.make<ConnectionClosed & { readonly revoked: boolean }>()
    const started = yield* Deferred.make<void>()
    let revoked = false

    const revoke = Effect.suspend(() => {
      if (revoked) return Effect.void
      revoked = true
      return Effect.promise(() => store.clear())
    })

    yield* connection.rpc.live.events().pipe(
      Stream.runForEach((event) =>
        Effect.gen(function*() {
          if (event._tag === "EventsStarted") return yield* Deferred.succeed(started, undefined)
          if (event._tag === "AccessRevoked") yield* revoke
          yield* SubscriptionRef.update(received, (events) => [...events, event])
        })
      ),
      Effect.ignore,
      Effect.forkScoped
    )
    yield* Effect.forkScoped(Effect.gen(function*() {
      const { code } = yield* Deferred.await(connection.closed)
      if (code === CLOSE_ACCESS_REVOKED) yield* revoke
      yield* Deferred.succeed(closed, { code, revoked })
    }))
    // From here on nothing addressed to this device is missed.
    yield* Effect.raceFirst(Deferred.await(started), Deferred.await(connection.closed))

    const take = <A extends LiveEvent>(match: (event: LiveEvent) => event is A) =>
      Effect.raceFirst(
        received.changes.pipe(
          Stream.filterMap((events) => {
            for (let i = 0; i < events.length; i++) {
              const event = events[i]!
              if (!taken.has(i) && match(event)) {
                taken.add(i)
                return Option.some(event)
              }
            }
            return Option.none()
          }),
          Stream.runHead,
          Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: Effect.succeed }))
        ),
        Effect.flatMap(Deferred.await(closed), (c) => Effect.fail(c as ConnectionClosed))
      )

    return {
      kind,
      credentials,
      rpc: connection.rpc,
      received,
      take,
      closed,
      setReady: (ready: boolean) => Effect.orDie(connection.rpc.presence.set({ ready }))
    } satisfies DeviceSession
  })

/** Signs in with the credentials in the key store; None when the store is empty (not activated, or revoked). */
export const signInFromStore = (store: KeyStore, options: SignInOptions = {}) =>
  Effect.flatMap(Effect.promise(() => store.load()), (credentials) =>
    credentials === undefined ? Effect.succeedNone : Effect.asSome(signIn(credentials, store, options)))

