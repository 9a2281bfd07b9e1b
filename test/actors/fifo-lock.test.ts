/**
 * The lock behind every actor, relay room and the conference registry: one holder at a time, turns in arrival
 * order, and no lost lock when a holder or a waiter is interrupted, however the interruption falls.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { makeFifoLock } from "../../src/actors/FifoLock.js"

describe("FifoLock", () => {
  it.effect("one holder at a time, in the order they asked, also with thousands waiting", () =>
    Effect.gen(function*() {
      const lock = yield* makeFifoLock
      let inside = 0
      let most = 0
      const order: Array<number> = []
      const gate = yield* Deferred.make<void>()
      // The first holds the lock until the rest are queued behind it.
      const first = yield* Effect.fork(lock.withLock(Deferred.await(gate)))
      yield* Effect.yieldNow()
      const rest = yield* Effect.forEach(Array.from({ length: 5000 }, (_, i) => i), (i) =>
        Effect.fork(lock.withLock(Effect.gen(function*() {
          inside++
          most = Math.max(most, inside)
          order.push(i)
          yield* Effect.yieldNow()
          inside--
        }))))
      yield* Effect.yieldNow()
      expect(order).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.joinAll(rest)
      expect(most).toBe(1)
      expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i))
      expect(lock.busy()).toBe(false)
    }))

  it.effect("a waiter interrupted before its turn leaves the queue; the next one gets the lock", () =>
    Effect.gen(function*() {
      const lock = yield* makeFifoLock
      const gate = yield* Deferred.make<void>()
      const ran: Array<string> = []
      const holder = yield* Effect.fork(lock.withLock(Deferred.await(gate)))
      yield* Effect.yieldNow()
      const quitter = yield* Effect.fork(lock.withLock(Effect.sync(() => ran.push("quitter"))))
      const patient = yield* Effect.fork(lock.withLock(Effect.sync(() => ran.push("patient"))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(quitter)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(patient)
      expect(ran).toEqual(["patient"])
      expect(lock.busy()).toBe(false)
    }))

  it.effect("a holder interrupted mid-way releases the lock", () =>
    Effect.gen(function*() {
      const lock = yield* makeFifoLock
      const holder = yield* Effect.fork(lock.withLock(Effect.never))
      yield* Effect.yieldNow()
      const next = yield* Effect.fork(lock.withLock(Effect.succeed("got it")))
      yield* Effect.yieldNow()
      expect(lock.busy()).toBe(true)
      yield* Fiber.interrupt(holder)
      expect(yield* Fiber.join(next)).toBe("got it")
      expect(lock.busy()).toBe(false)
    }))

  it.effect("a waiter interrupted just as the lock is handed to it passes it on", () =>
    Effect.gen(function*() {
      const lock = yield* makeFifoLock
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock(Deferred.await(gate)))
      yield* Effect.yieldNow()
      const unlucky = yield* Effect.fork(lock.withLock(Effect.void))
      const after = yield* Effect.fork(lock.withLock(Effect.succeed("after")))
      yield* Effect.yieldNow()
      // The release hands over to `unlucky` and its interruption lands before it runs: in the same step.
      yield* Effect.zip(Deferred.succeed(gate, undefined), Fiber.interruptFork(unlucky))
      yield* Fiber.join(holder)
      yield* Fiber.await(unlucky)
      expect(yield* Fiber.join(after)).toBe("after")
      expect(lock.busy()).toBe(false)
    }))

  it.effect("an error inside releases the lock and reaches the caller", () =>
    Effect.gen(function*() {
      const lock = yield* makeFifoLock
      const failed = yield* Effect.flip(lock.withLock(Effect.fail("no")))
      expect(failed).toBe("no")
      expect(yield* lock.withLock(Effect.succeed(1))).toBe(1)
      expect(lock.busy()).toBe(false)
    }))
})
