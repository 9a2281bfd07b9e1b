/**
 * The two kinds of account actor: one per host account, one per customer account. Each rebuilds its state from its
 * own stream; appends go through `commit`, which seals the events and carries the expected version.
 */
import { Context, Duration, Effect, Layer, Option, PubSub } from "effect"
import { type CustomerEvent, type CustomerState, evolveCustomer, initialCustomer } from "../domain/customer.js"
import { evolveHost, type HostEvent, type HostState, initialHost } from "../domain/host.js"
import type { CustomerId, HostId } from "../domain/ids.js"
import { DataKeys } from "../eventstore/DataKeys.js"
import {
  EventStore,
  type LookupChange,
  type LookupTaken,
  type StoredEvent,
  type StreamAppend,
  type VersionConflict
} from "../eventstore/EventStore.js"
import { ServerConfig } from "../server/Config.js"
import { type ActorRegistry, type Loaded, makeActorRegistry } from "./ActorRegistry.js"
import { customerCodec, hostCodec } from "./eventCodec.js"

/** Lifecycle changes that live sessions must react to at once (in this process). */
export type AccountChange =
  | { readonly _tag: "CustomerActivated"; readonly hostId: HostId; readonly customerId: CustomerId }
  | { readonly _tag: "CustomerAccessEnded"; readonly hostId: HostId; readonly customerId: CustomerId }

export interface PendingAppend {
  readonly hosts?: ReadonlyArray<{ readonly hostId: HostId; readonly expectedVersion: number; readonly events: ReadonlyArray<HostEvent> }>
  readonly customers?: ReadonlyArray<{
    readonly customerId: CustomerId
    readonly expectedVersion: number
    readonly events: ReadonlyArray<CustomerEvent>
  }>
  readonly lookups?: LookupChange
}

export class AccountActors extends Context.Tag("tessera/AccountActors")<AccountActors, {
  readonly hosts: ActorRegistry<HostState>
  readonly customers: ActorRegistry<CustomerState>
  /** Seals and appends events to one or more streams in one transaction. */
  readonly commit: (pending: PendingAppend) => Effect.Effect<void, VersionConflict | LookupTaken>
  readonly changes: PubSub.PubSub<AccountChange>
}>() {}

const loadWith = <S, E>(
  codec: { readonly decode: (stored: StoredEvent) => Effect.Effect<Option.Option<E>, never, DataKeys> },
  initial: S,
  evolve: (state: S, event: E) => S,
  shredded: S
) =>
(streamId: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const stored = yield* store.read(streamId)
    let state = initial
    for (const event of stored) {
      const decoded = yield* codec.decode(event)
      if (Option.isNone(decoded)) return { state: shredded, version: stored.length } satisfies Loaded<S>
      state = evolve(state, decoded.value)
    }
    return { state, version: stored.length } satisfies Loaded<S>
  })

export const AccountActorsLive = Layer.scoped(
  AccountActors,
  Effect.gen(function*() {
    const store = yield* EventStore
    const keys = yield* DataKeys
    const config = yield* ServerConfig
    const idleTimeToLive = Duration.seconds(config.actorIdleSeconds)
    const provide = <A>(effect: Effect.Effect<A, never, EventStore | DataKeys>) =>
      effect.pipe(Effect.provideService(EventStore, store), Effect.provideService(DataKeys, keys))

    const hosts = yield* makeActorRegistry<HostState>({
      load: (id) => provide(loadWith(hostCodec, initialHost, evolveHost, initialHost)(id)),
      idleTimeToLive
    })
    const customers = yield* makeActorRegistry<CustomerState>({
      load: (id) => provide(loadWith(customerCodec, initialCustomer, evolveCustomer, { status: "deleted" })(id)),
      idleTimeToLive
    })

    const commit = (pending: PendingAppend) =>
      Effect.gen(function*() {
        const appends: Array<StreamAppend> = []
        for (const h of pending.hosts ?? []) {
          appends.push({
            streamId: h.hostId,
            expectedVersion: h.expectedVersion,
            events: yield* Effect.forEach(h.events, (e) => hostCodec.encode(h.hostId, e))
          })
        }
        for (const c of pending.customers ?? []) {
          appends.push({
            streamId: c.customerId,
            expectedVersion: c.expectedVersion,
            events: yield* Effect.forEach(c.events, (e) => customerCodec.encode(c.customerId, e))
          })
        }
        yield* store.append(appends, pending.lookups)
      }).pipe(Effect.provideService(DataKeys, keys))

    return { hosts, customers, commit, changes: yield* PubSub.unbounded<AccountChange>() }
  })
)
