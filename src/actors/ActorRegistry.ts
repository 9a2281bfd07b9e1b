/**
 * A registry of in-process actors, one per account stream. An actor holds the state rebuilt from its stream and a
 * lock, so the commands for one account run one at a time. Idle actors are passivated by the RcMap and rebuilt from
 * their events when next needed. When another writer (another process) got an append in first, the store answers
 * with a VersionConflict: the actor reloads from its events and the command is decided again. A command refused on
 * cached state is decided once more on reloaded state before the refusal stands, since another process may have
 * appended in the meantime (that costs one read, on refusals only).
 */
import { Duration, Effect, Ref, RcMap, Scope } from "effect"
import { makeFifoLock } from "./FifoLock.js"
import { AccountBusy } from "../domain/errors.js"
import { VersionConflict } from "../eventstore/EventStore.js"

export interface Loaded<S> {
  readonly state: S
  readonly version: number
}

/** What a transaction decided: its result, and the actor's state after the events it appended (if any). */
export interface Outcome<S, A> {
  readonly result: A
  readonly next?: Loaded<S>
}

const MAX_ATTEMPTS = 4

export interface ActorRegistry<S> {
  readonly transact: <A, E, R>(
    streamId: string,
    f: (current: Loaded<S>) => Effect.Effect<Outcome<S, A>, E | VersionConflict, R>
  ) => Effect.Effect<A, E | AccountBusy, R>
  readonly read: (streamId: string) => Effect.Effect<Loaded<S>>
  /** Drops the cached state so that the next command reloads it from the store. */
  readonly forget: (streamId: string) => Effect.Effect<void>
  readonly activeCount: Effect.Effect<number>
}

export const makeActorRegistry = <S>(options: {
  readonly load: (streamId: string) => Effect.Effect<Loaded<S>>
  readonly idleTimeToLive: Duration.DurationInput
}): Effect.Effect<ActorRegistry<S>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const actors = yield* RcMap.make({
      lookup: (streamId: string) =>
        Effect.all({ current: Effect.flatMap(options.load(streamId), Ref.make), lock: makeFifoLock }),
      idleTimeToLive: options.idleTimeToLive
    })

    const transact: ActorRegistry<S>["transact"] = (streamId, f) =>
      Effect.scoped(
        Effect.gen(function*() {
          const actor = yield* RcMap.get(actors, streamId)
          return yield* actor.lock.withLock(
            Effect.gen(function*() {
              let fresh = false
              for (let attempt = 1;; attempt++) {
                const current = yield* Ref.get(actor.current)
                const outcome = yield* Effect.either(f(current))
                if (outcome._tag === "Right") {
                  if (outcome.right.next) yield* Ref.set(actor.current, outcome.right.next)
                  return outcome.right.result
                }
                const error = outcome.left
                const conflict = error instanceof VersionConflict
                if (conflict && error.streamId !== streamId) return yield* Effect.fail(error as never)
                // A command is only refused on the stream as it is now: another process (the operator CLI, another
                // server) may have appended since this actor last loaded, without any conflict to tell us.
                if (!conflict && fresh) return yield* Effect.fail(error as Exclude<typeof error, VersionConflict>)
                if (attempt >= MAX_ATTEMPTS) return yield* Effect.fail(new AccountBusy())
                const reloaded = yield* options.load(streamId)
                yield* Ref.set(actor.current, reloaded)
                if (!conflict && reloaded.version === current.version) {
                  return yield* Effect.fail(error as Exclude<typeof error, VersionConflict>)
                }
                fresh = true
              }
            })
          )
        })
      )

    return {
      transact,
      read: (streamId) => Effect.scoped(Effect.flatMap(RcMap.get(actors, streamId), (actor) => Ref.get(actor.current))),
      forget: (streamId) => RcMap.invalidate(actors, streamId),
      activeCount: Effect.map(RcMap.keys(actors), (keys) => keys.length)
    }
  })
