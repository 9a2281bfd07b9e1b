/**
 * The host's side of a conference: the host device leads it and is its key distributor. It creates the conference,
 * attaches secured calls with its customers, and on every join and every leave starts a new epoch: a fresh random
 * group key, installed for its own frames (slot 0) and sent to each current participant, with that participant's
 * sender slot, sealed over their pairwise secured call. Nobody who left gets a key again; a joiner gets the current
 * one at once. The server only learns that someone joined or left, never a key.
 *
 * A participant is gone when the host detaches it, when the server says it left (ConferenceParticipantLeft: it
 * left, its call ended, it was revoked), or when its secured call ends on this side, whichever comes first. The
 * conference ends when the scope closes (or with `end`). This module takes the conference's
 * ConferenceParticipantLeft events of this device; an app using it should not `take` those.
 */
import { Deferred, Effect, type Scope } from "effect"
import { toBase64Url } from "../crypto/bytes.js"
import type { SFrameCipherSuiteId } from "../crypto/sframe.js"
import type { CallId } from "../domain/ids.js"
import type { ConferenceId, ConferenceParticipantLeft, LiveEvent } from "../domain/liveEvents.js"
import type { SecureCall } from "./CallSecurity.js"
import { type ConferenceKey, GROUP_KEY_BYTES, MAX_EPOCH, MAX_SLOTS } from "./ConferenceKeys.js"
import { type ConferenceKeys, ConferenceLeft, makeKeyState } from "./ConferenceEpochs.js"
import type { DeviceSession } from "./DeviceSession.js"

/** A secured call with a customer, as the conference needs it: to send keys, and to know when it ended. */
export type ConferenceChannel = Pick<SecureCall<ConferenceKey>, "callId" | "send" | "ended">

export interface ConferenceParticipant {
  readonly callId: CallId
  /** The participant's sender slot (the host's is 0). */
  readonly slot: number
}

export interface LeadConferenceOptions {
  readonly suite?: SFrameCipherSuiteId
  /** How long an epoch's keys are kept once a newer one is current; one second unless given. */
  readonly epochGrace?: Parameters<typeof Effect.sleep>[0]
  readonly futureEpochWaitMs?: number
}

type Rpc = DeviceSession["rpc"]["conference"]
type RpcError<F extends (...args: ReadonlyArray<never>) => Effect.Effect<unknown, unknown>> = Effect.Effect.Error<ReturnType<F>>

export interface HostedConference extends ConferenceKeys {
  readonly conferenceId: ConferenceId
  /**
   * Attaches an accepted, secured call with a customer: the customer joins, a new epoch starts, and the customer
   * has its key as soon as this succeeds. Attaching a call again does nothing.
   */
  readonly attach: (call: ConferenceChannel) => Effect.Effect<void, RpcError<Rpc["attach"]> | ConferenceLeft>
  /** Takes a call's customer out (the call goes on); a new epoch starts without it. */
  readonly detach: (callId: CallId) => Effect.Effect<void, RpcError<Rpc["detach"]> | ConferenceLeft>
  readonly participants: Effect.Effect<ReadonlyArray<ConferenceParticipant>>
  /** Completes when the conference is over for this device (ended, or the connection went away). */
  readonly ended: Effect.Effect<ConferenceLeft>
  /** Ends the conference for everybody; closing the scope does the same. */
  readonly end: Effect.Effect<void>
}

interface Member {
  readonly channel: ConferenceChannel
  readonly slot: number
}

/** Creates a conference led by this host device, for the current scope. */
export const leadConference = (
  device: DeviceSession,
  options: LeadConferenceOptions = {}
): Effect.Effect<HostedConference, RpcError<Rpc["create"]>, Scope.Scope> =>
  Effect.gen(function*() {
    const { conferenceId } = yield* device.rpc.conference.create()
    const state = yield* makeKeyState(options)
    const ended = yield* Deferred.make<ConferenceLeft>()
    const members = new Map<CallId, Member>()
    // One membership change, and its new epoch, at a time.
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)

    const finish = (reason: ConferenceLeft["reason"]) =>
      Effect.gen(function*() {
        if (!(yield* Deferred.succeed(ended, new ConferenceLeft({ reason })))) return
        members.clear()
        yield* state.destroy
      })
    const end = Effect.gen(function*() {
      if (yield* Deferred.isDone(ended)) return
      yield* finish("ended")
      yield* Effect.ignore(device.rpc.conference.end({ conferenceId }))
    })
    yield* Effect.addFinalizer(() => end)
    /** Fails with the end once the conference is over. */
    const open = Effect.flatMap(Deferred.isDone(ended), (done) => done ? Effect.flatMap(Deferred.await(ended), Effect.fail) : Effect.void)

    /** A new epoch: a fresh key for this device and for every current participant, each with its slot. */
    const newEpoch = Effect.gen(function*() {
      const epoch = (state.ring.current?.epoch ?? 0) + 1
      if (epoch > MAX_EPOCH) return yield* Effect.dieMessage("conference epochs exhausted")
      const groupKey = crypto.getRandomValues(new Uint8Array(GROUP_KEY_BYTES))
      const key = toBase64Url(groupKey)
      const installed = yield* state.install(epoch, 0, groupKey)
      groupKey.fill(0)
      if (!installed) return
      // A participant whose call just ended cannot be sent to: it is about to be dropped anyway.
      yield* Effect.forEach(members.values(), ({ channel, slot }) =>
        Effect.ignore(channel.send({ _tag: "ConferenceKey", conferenceId, epoch, slot, suite: state.ring.suite, key })), {
        concurrency: "unbounded",
        discard: true
      })
    })

    const drop = (callId: CallId) =>
      locked(Effect.gen(function*() {
        if (!members.delete(callId)) return
        yield* newEpoch
      }))

    yield* newEpoch

    // The server's word that a participant is gone; the connection's end is the conference's.
    yield* device.take((e: LiveEvent): e is ConferenceParticipantLeft =>
      e._tag === "ConferenceParticipantLeft" && e.conferenceId === conferenceId
    ).pipe(
      Effect.flatMap((e) => drop(e.callId)),
      Effect.forever,
      Effect.catchAll(() => finish("disconnected")),
      Effect.forkScoped
    )

    const freeSlot = () => {
      const used = new Set([0, ...[...members.values()].map((m) => m.slot)])
      for (let slot = 1; slot < MAX_SLOTS; slot++) if (!used.has(slot)) return slot
      return undefined
    }

    return {
      ...state.keys,
      conferenceId,
      attach: (channel) =>
        locked(Effect.gen(function*() {
          yield* open
          if (members.has(channel.callId)) return
          yield* device.rpc.conference.attach({ conferenceId, callId: channel.callId })
          const slot = freeSlot()
          // The server admits no more participants than there are slots.
          if (slot === undefined) return yield* Effect.dieMessage("no free sender slot")
          members.set(channel.callId, { channel, slot })
          yield* Effect.forkIn(Effect.zipRight(channel.ended, drop(channel.callId)), state.scope)
          yield* newEpoch
        })),
      detach: (callId) =>
        locked(Effect.gen(function*() {
          yield* open
          yield* device.rpc.conference.detach({ conferenceId, callId })
          if (members.delete(callId)) yield* newEpoch
        })),
      participants: Effect.sync(() => [...members].map(([callId, { slot }]) => ({ callId, slot }))),
      ended: Deferred.await(ended),
      end
    } satisfies HostedConference
  })
