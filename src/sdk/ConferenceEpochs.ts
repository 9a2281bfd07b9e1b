/**
 * A device's epochs of one conference, as both the host and a member hold them: the key ring (ConferenceKeys.ts),
 * its current key for the app to watch, and the retirement of old epochs after their grace. Closing the scope, or
 * `destroy`, zeroes every key.
 */
import { Effect, Option, Schema, type Stream, SubscriptionRef } from "effect"
import type { KeysDestroyed } from "../crypto/errors.js"
import type { SFrameCipherSuiteId } from "../crypto/sframe.js"
import { ConferenceKeyRing, type ConferenceReceiver, type ConferenceSender, type CurrentConferenceKey } from "./ConferenceKeys.js"

/** How long the keys of an epoch are kept once a newer one is current, for frames still on their way. */
export const DEFAULT_EPOCH_GRACE = "1 second"

/** Why this device is no longer in the conference. Its keys are gone. */
export class ConferenceLeft extends Schema.TaggedError<ConferenceLeft>()("ConferenceLeft", {
  reason: Schema.Literal("detached", "left", "call-ended", "ended", "host-left", "disconnected", "closed")
}) {
  override get message() {
    return `no longer in the conference (${this.reason})`
  }
}

/** The media keys of a conference as one participant holds them. */
export interface ConferenceKeys {
  /** The key this device sends with now; None before the first key and after it left. */
  readonly current: Effect.Effect<Option.Option<CurrentConferenceKey>>
  /** Every change of the current key (None at the end). */
  readonly keyChanges: Stream.Stream<Option.Option<CurrentConferenceKey>>
  /** This device's one sender, for all its tracks; it always encrypts under the current epoch. */
  readonly sender: ConferenceSender
  /** A receiver for the others' frames (one per received track, or one for all). */
  readonly createReceiver: (options?: { readonly replayWindow?: number }) => Effect.Effect<ConferenceReceiver, KeysDestroyed>
}

/** Key ring, current key and retirement of old epochs: what host and member share. */
export const makeKeyState = (options: {
  readonly suite?: SFrameCipherSuiteId | undefined
  readonly epochGrace?: Parameters<typeof Effect.sleep>[0] | undefined
  readonly futureEpochWaitMs?: number | undefined
}) =>
  Effect.gen(function*() {
    const ring = new ConferenceKeyRing({
      ...(options.suite === undefined ? {} : { suite: options.suite }),
      ...(options.futureEpochWaitMs === undefined ? {} : { futureEpochWaitMs: options.futureEpochWaitMs })
    })
    const current = yield* SubscriptionRef.make(Option.none<CurrentConferenceKey>())
    const grace = options.epochGrace ?? DEFAULT_EPOCH_GRACE
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => Effect.sync(() => ring.destroy()))

    /** Makes the epoch current; the ones before it go after the grace. False when it is not newer. */
    const install = (epoch: number, slot: number, groupKey: Uint8Array) =>
      Effect.gen(function*() {
        const installed = yield* Effect.tryPromise(() => ring.install(epoch, slot, groupKey)).pipe(
          Effect.orElseSucceed(() => false)
        )
        if (!installed || ring.current === undefined) return false
        yield* SubscriptionRef.set(current, Option.some(ring.current))
        yield* Effect.forkIn(Effect.delay(Effect.sync(() => ring.retireBefore(epoch)), grace), scope)
        return true
      })
    const destroy = Effect.zipRight(Effect.sync(() => ring.destroy()), SubscriptionRef.set(current, Option.none()))

    const keys: ConferenceKeys = {
      current: SubscriptionRef.get(current),
      keyChanges: current.changes,
      sender: ring.sender,
      createReceiver: (receiverOptions) =>
        Effect.try({ try: () => ring.createReceiver(receiverOptions), catch: (e) => e as KeysDestroyed })
    }
    return { ring, install, destroy, keys, scope }
  })

