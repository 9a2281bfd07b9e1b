/**
 * The live-event queue behaves as the bounded Mailbox it replaces, for what Sessions and RpcServer do with it:
 * batches, the capacity bound, ending with messages left, a reader woken by an offer or the end, interruption.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Mailbox, Option } from "effect"
import { EventQueue } from "../../src/actors/EventQueue.js"

describe("EventQueue", () => {
  it.effect("takeAll returns what is queued in one batch; a full queue refuses offers", () =>
    Effect.gen(function*() {
      const queue = new EventQueue<number>(3)
      expect(Mailbox.isReadonlyMailbox(queue)).toBe(true)
      expect([1, 2, 3, 4].map((n) => queue.unsafeOffer(n))).toEqual([true, true, true, false])
      expect(queue.unsafeSize()).toEqual(Option.some(3))
      const [batch, done] = yield* queue.takeAll
      expect(Chunk.toReadonlyArray(batch)).toEqual([1, 2, 3])
      expect(done).toBe(false)
      expect(queue.unsafeOffer(5)).toBe(true)
    }))

  it.effect("a waiting reader wakes on the next offer, and on the end", () =>
    Effect.gen(function*() {
      const queue = new EventQueue<string>(8)
      const first = yield* Effect.fork(queue.takeAll)
      yield* Effect.yieldNow()
      queue.unsafeOffer("a")
      queue.unsafeOffer("b")
      const [batch, done] = yield* Fiber.join(first)
      expect(Chunk.toReadonlyArray(batch)).toEqual(["a", "b"])
      expect(done).toBe(false)
      const second = yield* Effect.fork(queue.takeAll)
      yield* Effect.yieldNow()
      expect(yield* queue.end).toBe(true)
      expect(yield* Fiber.join(second)).toEqual([Chunk.empty(), true])
      expect(queue.unsafeSize()).toEqual(Option.none())
    }))

  it.effect("ended with messages left: they are still taken, the last batch says done, offers are refused", () =>
    Effect.gen(function*() {
      const queue = new EventQueue<number>(8)
      queue.unsafeOffer(1)
      queue.unsafeEnd()
      expect(queue.unsafeOffer(2)).toBe(false)
      expect(queue.unsafeSize()).toEqual(Option.some(1))
      const [batch, done] = yield* queue.takeAll
      expect(Chunk.toReadonlyArray(batch)).toEqual([1])
      expect(done).toBe(true)
      expect(yield* queue.takeAll).toEqual([Chunk.empty(), true])
      expect(yield* Effect.either(queue.take)).toMatchObject({ _tag: "Left" })
    }))

  it.effect("an interrupted reader is forgotten; the next one gets the messages", () =>
    Effect.gen(function*() {
      const queue = new EventQueue<number>(8)
      const reader = yield* Effect.fork(queue.takeAll)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(reader)
      queue.unsafeOffer(7)
      expect(yield* queue.take).toBe(7)
      queue.unsafeOffer(8)
      queue.unsafeOffer(9)
      expect(yield* queue.takeN(1)).toEqual([Chunk.of(8), false])
      expect(Chunk.toReadonlyArray(yield* queue.clear)).toEqual([9])
    }))
})
