/**
 * The events of one live.events subscription: a bounded queue that Sessions writes synchronously and RpcServer
 * reads as a ReadonlyMailbox. For that use (unsafeOffer, unsafeSize, end; takeAll) it behaves as
 * `Mailbox.make({ capacity })`: an offer is refused once the queue is full or ended, ending lets the reader take
 * what is left (the last batch says done), and a reader waiting on an empty queue wakes on the next offer or end.
 *
 * It exists for memory: every idle session holds one. A Mailbox carries, per instance, its prebuilt effects and
 * closures and three Sets (about 2.3 KiB); this is a few fields, the effects are built when asked for.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Inspectable from "effect/Inspectable"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"

type Wake = (effect: Effect.Effect<void>) => void

const constDone = [Chunk.empty<never>(), true] as const

export class EventQueue<A> extends Effectable.Class<readonly [messages: Chunk.Chunk<A>, done: boolean]>
  implements Mailbox.ReadonlyMailbox<A>
{
  declare readonly [Mailbox.ReadonlyTypeId]: Mailbox.ReadonlyTypeId
  #messages: Array<A> = []
  #ended = false
  /** Readers waiting for a message or the end; almost always none or one. */
  #waiting: Array<Wake> | undefined = undefined

  constructor(readonly capacity: number) {
    super()
  }

  /** Queues a message; false if the queue is full or ended. */
  unsafeOffer(message: A): boolean {
    if (this.#ended || this.#messages.length >= this.capacity) return false
    this.#messages.push(message)
    this.#wake()
    return true
  }

  /** No further offers; what is queued can still be taken. False if it had already ended. */
  unsafeEnd(): boolean {
    if (this.#ended) return false
    this.#ended = true
    this.#wake()
    return true
  }

  get end(): Effect.Effect<boolean> {
    return Effect.sync(() => this.unsafeEnd())
  }

  /** None once ended and drained (as a Mailbox that is done), else the number of queued messages. */
  unsafeSize(): Option.Option<number> {
    return this.#done ? Option.none() : Option.some(this.#messages.length)
  }

  get size(): Effect.Effect<Option.Option<number>> {
    return Effect.sync(() => this.unsafeSize())
  }

  get takeAll(): Effect.Effect<readonly [messages: Chunk.Chunk<A>, done: boolean]> {
    return Effect.suspend(() => {
      if (this.#messages.length > 0) return Effect.succeed([this.#takeUpTo(Infinity), this.#ended] as const)
      if (this.#ended) return Effect.succeed(constDone)
      return Effect.zipRight(this.#wait(), this.takeAll)
    })
  }

  takeN(n: number): Effect.Effect<readonly [messages: Chunk.Chunk<A>, done: boolean]> {
    return Effect.suspend(() => {
      if (this.#done) return Effect.succeed(constDone)
      if (n <= 0) return Effect.succeed([Chunk.empty<A>(), false] as const)
      if (this.#messages.length > 0) {
        const messages = this.#takeUpTo(n)
        return Effect.succeed([messages, this.#done] as const)
      }
      return Effect.zipRight(this.#wait(), this.takeN(n))
    })
  }

  get take(): Effect.Effect<A, Cause.NoSuchElementException> {
    return Effect.suspend(() => {
      if (this.#messages.length > 0) return Effect.succeed(this.#messages.shift()!)
      if (this.#ended) return Effect.fail(new Cause.NoSuchElementException())
      return Effect.zipRight(this.#wait(), this.take)
    })
  }

  get clear(): Effect.Effect<Chunk.Chunk<A>> {
    return Effect.sync(() => this.#takeUpTo(Infinity))
  }

  /** Waits until the queue has ended and been drained. */
  get await(): Effect.Effect<void> {
    return Effect.suspend(() => this.#done ? Effect.void : Effect.zipRight(this.#wait(), this.await))
  }

  commit() {
    return this.takeAll
  }

  toJSON() {
    return { _id: "EventQueue", ended: this.#ended, size: this.#messages.length }
  }

  override toString(): string {
    return Inspectable.format(this)
  }

  [Inspectable.NodeInspectSymbol]() {
    return Inspectable.format(this)
  }

  get #done(): boolean {
    return this.#ended && this.#messages.length === 0
  }

  #takeUpTo(n: number): Chunk.Chunk<A> {
    if (this.#messages.length <= n) {
      const all = this.#messages
      this.#messages = []
      return Chunk.unsafeFromArray(all)
    }
    return Chunk.unsafeFromArray(this.#messages.splice(0, n))
  }

  #wake(): void {
    const waiting = this.#waiting
    if (waiting === undefined) return
    this.#waiting = undefined
    for (const wake of waiting) wake(Effect.void)
  }

  /** Resumes on the next offer or end (the caller looks again); interruptible. */
  #wait(): Effect.Effect<void> {
    return Effect.async<void>((wake) => {
      ;(this.#waiting ??= []).push(wake)
      return Effect.sync(() => {
        const index = this.#waiting?.indexOf(wake) ?? -1
        if (index >= 0) this.#waiting!.splice(index, 1)
      })
    })
  }
}

Object.defineProperty(EventQueue.prototype, Mailbox.ReadonlyTypeId, { value: Mailbox.ReadonlyTypeId })
