/**
 * A mutual-exclusion lock that hands over to exactly one waiter, in arrival order. Effect's Semaphore wakes every
 * waiter on each release and all but one go back to waiting, so n queued operations cost O(n²) wake-ups: a client
 * that queues thousands of requests on one actor or relay room could spend minutes of the server's CPU. Here a
 * release completes the next waiter's Deferred, so each operation costs O(1) to hand over however long the queue.
 *
 * A waiter interrupted before its turn leaves the queue; one interrupted just as the lock was handed to it passes
 * it on, so the lock is never lost.
 */
import { Deferred, Effect } from "effect"

export interface FifoLock {
  /** Runs `effect` while holding the lock: after everyone who asked before, before everyone who asks later. */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Whether the lock is held or waited for now (for tests and metrics). */
  readonly busy: () => boolean
}

/** Waiters are kept in an array read from `head`; it is compacted once the read part outweighs the rest. */
const COMPACT_AT = 1024

export const makeFifoLock: Effect.Effect<FifoLock> = Effect.sync(() => {
  let held = false
  let waiters: Array<Deferred.Deferred<void>> = []
  let head = 0

  // Hands the lock to the first waiter still waiting (an interrupted one has completed its own Deferred).
  const release: Effect.Effect<void> = Effect.suspend(function next(): Effect.Effect<void> {
    if (head >= waiters.length) {
      held = false
      waiters = []
      head = 0
      return Effect.void
    }
    const waiter = waiters[head++]!
    if (head >= COMPACT_AT && head * 2 >= waiters.length) {
      waiters = waiters.slice(head)
      head = 0
    }
    return Effect.flatMap(Deferred.succeed(waiter, undefined), (handed) => handed ? Effect.void : next())
  })

  const acquire = (restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>) =>
    Effect.suspend(() => {
      if (!held) {
        held = true
        return Effect.void
      }
      return Effect.flatMap(Deferred.make<void>(), (turn) => {
        waiters.push(turn)
        return restore(Deferred.await(turn)).pipe(
          // Interrupted while waiting: leave the queue, or, if the lock was handed over meanwhile, pass it on.
          Effect.onInterrupt(() => Effect.flatMap(Deferred.interrupt(turn), (left) => left ? Effect.void : release))
        )
      })
    })

  return {
    withLock: (effect) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(acquire(restore), Effect.ensuring(restore(effect), release))
      ),
    busy: () => held
  }
})
