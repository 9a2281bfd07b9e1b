/**
 * A customer's side of a conference. Its app heard ConferenceParticipantJoined for its call with the host and holds
 * that call secured (secureCall); the host's device sends each epoch's group key over it (ConferenceKey). The member
 * reads the call's messages itself: keys go into its key ring, everything else is handed on through `receive`.
 *
 * The member is out, and every key it held is zeroed, when the server says so (detached, left, the conference ended),
 * when its call ends, or when its scope closes (which leaves the conference). Keys for another conference, another
 * SFrame suite or the host's own slot are ignored; an epoch not newer than the current one never replaces it.
 *
 * This module takes the conference's ConferenceParticipantLeft and ConferenceEnded events of this device; an app
 * using it should not `take` those, and learns of the end through `left`.
 */
import { Deferred, Effect, Either, Option, Queue, Schema, type Scope } from "effect"
import { fromBase64Url } from "../crypto/bytes.js"
import type { SFrameCipherSuiteId } from "../crypto/sframe.js"
import type { CallId } from "../domain/ids.js"
import type { ConferenceEnded, ConferenceId, ConferenceParticipantLeft, LiveEvent } from "../domain/liveEvents.js"
import type { SecureCallEnded, SignalRejected } from "./callErrors.js"
import type { SecureCall } from "./CallSecurity.js"
import { type ConferenceKeys, ConferenceLeft, makeKeyState } from "./ConferenceEpochs.js"
import { ConferenceKey } from "./ConferenceKeys.js"
import type { DeviceSession } from "./DeviceSession.js"

export interface ConferenceMemberOptions {
  readonly conferenceId: ConferenceId
  /** The secured call with the host that was attached to the conference. */
  readonly call: Pick<SecureCall<unknown>, "callId" | "receive">
  readonly suite?: SFrameCipherSuiteId
  readonly epochGrace?: Parameters<typeof Effect.sleep>[0]
  readonly futureEpochWaitMs?: number
}

export interface ConferenceMember extends ConferenceKeys {
  readonly conferenceId: ConferenceId
  readonly callId: CallId
  /** The call's messages that are not conference keys, in order; fails once the call has ended. */
  readonly receive: Effect.Effect<unknown, SignalRejected | SecureCallEnded>
  /** Completes when this device is out of the conference. */
  readonly left: Effect.Effect<ConferenceLeft>
  /** Leaves the conference (the call with the host goes on); closing the scope does the same. */
  readonly leave: Effect.Effect<void>
}

type Ending = ConferenceParticipantLeft | ConferenceEnded

/** Takes part in a conference over the attached call with its host, for the current scope. */
export const joinConference = (
  device: DeviceSession,
  options: ConferenceMemberOptions
): Effect.Effect<ConferenceMember, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { conferenceId, call } = options
    const state = yield* makeKeyState(options)
    const left = yield* Deferred.make<ConferenceLeft>()
    const inbox = yield* Queue.unbounded<Either.Either<unknown, SignalRejected> | SecureCallEnded>()
    const decodeKey = Schema.decodeUnknownOption(ConferenceKey)

    const finish = (reason: ConferenceLeft["reason"]) =>
      Effect.flatMap(Deferred.succeed(left, new ConferenceLeft({ reason })), (first) => first ? state.destroy : Effect.void)
    const leave = Effect.gen(function*() {
      if (yield* Deferred.isDone(left)) return
      yield* finish("left")
      yield* Effect.ignore(device.rpc.conference.leave({ conferenceId }))
    })
    yield* Effect.addFinalizer(() => leave)

    const onKey = (message: ConferenceKey) =>
      Effect.gen(function*() {
        // Slot 0 is the host's own: sending in it would reuse the host's nonces.
        if (message.conferenceId !== conferenceId || message.suite !== state.ring.suite || message.slot === 0) return
        if (yield* Deferred.isDone(left)) return
        const groupKey = fromBase64Url(message.key)
        yield* state.install(message.epoch, message.slot, groupKey)
        groupKey.fill(0)
      })

    // The call's messages: keys for the ring, the rest for the app; the call's end is the member's end.
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (true) {
        const next = yield* Effect.either(call.receive)
        if (Either.isLeft(next)) {
          if (next.left._tag === "SecureCallEnded") {
            yield* Queue.offer(inbox, next.left)
            return yield* finish("call-ended")
          }
          yield* Queue.offer(inbox, Either.left(next.left))
          continue
        }
        const key = decodeKey(next.right)
        if (Option.isSome(key)) yield* onKey(key.value)
        else yield* Queue.offer(inbox, Either.right(next.right))
      }
    }))

    yield* device.take((e: LiveEvent): e is Ending =>
      (e._tag === "ConferenceParticipantLeft" && e.conferenceId === conferenceId && e.callId === call.callId) ||
      (e._tag === "ConferenceEnded" && e.conferenceId === conferenceId)
    ).pipe(
      Effect.flatMap((e) => finish(e.reason)),
      Effect.catchAll(() => finish("disconnected")),
      Effect.forkScoped
    )

    const receive = Effect.flatMap(Queue.take(inbox), (item): Effect.Effect<unknown, SignalRejected | SecureCallEnded> =>
      // The end stays in the inbox, so that every later receive fails with it too.
      Either.isEither(item) ? item : Effect.zipRight(Queue.offer(inbox, item), Effect.fail(item))
    )

    return {
      ...state.keys,
      conferenceId,
      callId: call.callId,
      receive,
      left: Deferred.await(left),
      leave
    } satisfies ConferenceMember
  })
