/**
 * Calls between a host and one of its customers, in memory only: ringing, accepted, ended. Nothing about a call is
 * stored or logged. The server relays the parties' signalling payloads without parsing them (they are end-to-end
 * encrypted by the SDK).
 */
import { Context, Duration, Effect, FiberMap, Layer, Option } from "effect"
import { CallNotFound, CallStateInvalid, NotPermitted, PeerBusy, PeerUnavailable } from "../domain/errors.js"
import { type AccountId, type CallId, type CustomerId, type HostId, isCustomerId, isHostId } from "../domain/ids.js"
import { CallAccepted, CallEnded, type CallEndReason, IncomingCall, SignalReceived } from "../domain/liveEvents.js"
import { ServerConfig } from "../server/Config.js"
import type { Principal } from "./ConfigFiles.js"
import { CustomerAccounts } from "./CustomerAccounts.js"
import { newCallId } from "./newIds.js"
import { accountOf, Sessions } from "./Sessions.js"

interface Call {
  readonly callId: CallId
  readonly caller: { readonly account: AccountId; readonly clientId: number }
  readonly callee: AccountId
  /** The callee's sessions that ring; once accepted, only the one that answered. */
  ringing: ReadonlyArray<number>
  answeredBy: number | undefined
  /** Attached to a conference of the host's: then it does not keep the host from further calls. */
  inConference: boolean
}

export interface CallParties {
  readonly state: "ringing" | "active"
  readonly clientIds: ReadonlyArray<number>
}

export class Calls extends Context.Tag("tessera/Calls")<Calls, {
  readonly invite: (clientId: number, caller: Principal, peer: AccountId) => Effect.Effect<CallId, NotPermitted | PeerUnavailable | PeerBusy>
  readonly accept: (clientId: number, callId: CallId) => Effect.Effect<void, CallNotFound | CallStateInvalid>
  readonly decline: (clientId: number, callId: CallId, reason: "declined" | "busy") => Effect.Effect<void, CallNotFound | CallStateInvalid>
  readonly cancel: (clientId: number, callId: CallId) => Effect.Effect<void, CallNotFound | CallStateInvalid>
  readonly hangUp: (clientId: number, callId: CallId) => Effect.Effect<void, CallNotFound>
  readonly signal: (clientId: number, callId: CallId, payload: Uint8Array) => Effect.Effect<void, CallNotFound | CallStateInvalid>
  /** Who is in a call: its caller and, once accepted, the client that answered (while ringing: every ringing client). */
  readonly partiesOf: (callId: CallId) => Effect.Effect<Option.Option<CallParties>>
  /** Ends the calls of a connection that went away. */
  readonly dropClient: (clientId: number) => Effect.Effect<void>
  /** Ends every call of an account, e.g. when its access is revoked. */
  readonly endAllOf: (account: AccountId, reason: CallEndReason) => Effect.Effect<void>
  /**
   * Marks a call as attached to (or detached from) a conference. A host is busy only with calls outside
   * conferences, so that it can call further customers into one; its customers stay busy either way.
   */
  readonly setInConference: (callId: CallId, inConference: boolean) => Effect.Effect<void>
}>() {}

export const CallsLive = Layer.scoped(
  Calls,
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const customers = yield* CustomerAccounts
    const config = yield* ServerConfig
    const timers = yield* FiberMap.make<CallId>()
    const calls = new Map<CallId, Call>()

    const inCall = (account: AccountId) => {
      for (const call of calls.values()) {
        if (call.caller.account !== account && call.callee !== account) continue
        if (!(call.inConference && isHostId(account))) return true
      }
      return false
    }
    const partyOf = (call: Call, clientId: number): "caller" | "callee" | "ringing" | undefined =>
      call.caller.clientId === clientId
        ? "caller"
        : call.answeredBy === clientId
        ? "callee"
        : call.answeredBy === undefined && call.ringing.includes(clientId)
        ? "ringing"
        : undefined

    const find = (clientId: number, callId: CallId) =>
      Effect.suspend(() => {
        const call = calls.get(callId)
        const party = call ? partyOf(call, clientId) : undefined
        return call && party ? Effect.succeed({ call, party }) : Effect.fail(new CallNotFound())
      })

    /** Ends a call: every party still attached hears why, except `except` (who ended it). */
    const end = (call: Call, reason: CallEndReason, except?: number) =>
      Effect.gen(function*() {
        if (!calls.delete(call.callId)) return
        const event = new CallEnded({ callId: call.callId, reason })
        const targets = new Set<number>([call.caller.clientId, ...(call.answeredBy !== undefined ? [call.answeredBy] : call.ringing)])
        if (except !== undefined) targets.delete(except)
        yield* Effect.forEach(targets, (id) => sessions.deliverToClient(id, event), { discard: true })
        // Last: when the ring timer ends the call (no-answer), removing the timer interrupts this very fiber.
        yield* FiberMap.remove(timers, call.callId)
      })

    const mayCall = (caller: Principal, peer: AccountId) =>
      caller.kind === "customer"
        ? Effect.succeed(peer === caller.hostId)
        : isCustomerId(peer)
        ? customers.belongsTo(caller.hostId as HostId, peer as CustomerId)
        : Effect.succeed(false)

    return {
      invite: (clientId, caller, peer) =>
        Effect.gen(function*() {
          if (!(yield* mayCall(caller, peer))) return yield* new NotPermitted()
          const self = accountOf(caller)
          if (inCall(self)) return yield* new PeerBusy()
          const ringing = yield* sessions.readyClientsOf(peer)
          if (ringing.length === 0) return yield* new PeerUnavailable()
          if (inCall(peer)) return yield* new PeerBusy()
          const callId = yield* newCallId
          const call: Call = {
            callId,
            caller: { account: self, clientId },
            callee: peer,
            ringing,
            answeredBy: undefined,
            inConference: false
          }
          calls.set(callId, call)
          yield* Effect.forEach(ringing, (id) => sessions.deliverToClient(id, new IncomingCall({ callId, from: self })), {
            discard: true
          })
          yield* FiberMap.run(
            timers,
            callId,
            Effect.sleep(Duration.seconds(config.ringSeconds)).pipe(
              Effect.zipRight(Effect.suspend(() => (calls.get(callId)?.answeredBy === undefined ? end(call, "no-answer") : Effect.void)))
            )
          )
          return callId
        }),
      accept: (clientId, callId) =>
        Effect.gen(function*() {
          const { call, party } = yield* find(clientId, callId)
          if (party !== "ringing") return yield* new CallStateInvalid({ state: call.answeredBy === undefined ? "ringing" : "active" })
          call.answeredBy = clientId
          yield* FiberMap.remove(timers, callId)
          const others = call.ringing.filter((id) => id !== clientId)
          call.ringing = [clientId]
          yield* Effect.forEach(others, (id) => sessions.deliverToClient(id, new CallEnded({ callId, reason: "answered-elsewhere" })), {
            discard: true
          })
          yield* sessions.deliverToClient(call.caller.clientId, new CallAccepted({ callId }))
        }),
      decline: (clientId, callId, reason) =>
        Effect.gen(function*() {
          const { call, party } = yield* find(clientId, callId)
          if (party !== "ringing") return yield* new CallStateInvalid({ state: "active" })
          yield* end(call, reason, clientId)
        }),
      cancel: (clientId, callId) =>
        Effect.gen(function*() {
          const { call, party } = yield* find(clientId, callId)
          if (party !== "caller" || call.answeredBy !== undefined) return yield* new CallStateInvalid({ state: "active" })
          yield* end(call, "cancelled", clientId)
        }),
      hangUp: (clientId, callId) =>
        Effect.gen(function*() {
          const { call, party } = yield* find(clientId, callId)
          yield* end(call, party === "ringing" ? "declined" : "hung-up", clientId)
        }),
      signal: (clientId, callId, payload) =>
        Effect.gen(function*() {
          const { call, party } = yield* find(clientId, callId)
          if (call.answeredBy === undefined || party === "ringing") return yield* new CallStateInvalid({ state: "ringing" })
          const to = party === "caller" ? call.answeredBy : call.caller.clientId
          yield* sessions.deliverToClient(to, new SignalReceived({ callId, payload }))
        }),
      partiesOf: (callId) =>
        Effect.sync(() =>
          Option.map(Option.fromNullable(calls.get(callId)), (call): CallParties =>
            call.answeredBy === undefined
              ? { state: "ringing", clientIds: [call.caller.clientId, ...call.ringing] }
              : { state: "active", clientIds: [call.caller.clientId, call.answeredBy] })
        ),
      dropClient: (clientId) =>
        Effect.forEach(
          [...calls.values()].filter((call) => partyOf(call, clientId) !== undefined),
          (call) => {
            if (partyOf(call, clientId) === "ringing" && call.ringing.length > 1) {
              call.ringing = call.ringing.filter((id) => id !== clientId)
              return Effect.void
            }
            return end(call, "disconnected", clientId)
          },
          { discard: true }
        ),
      endAllOf: (account, reason) =>
        Effect.forEach(
          [...calls.values()].filter((call) => call.caller.account === account || call.callee === account),
          (call) => end(call, reason),
          { discard: true }
        ),
      setInConference: (callId, inConference) =>
        Effect.sync(() => {
          const call = calls.get(callId)
          if (call) call.inConference = inConference
        })
    }
  })
)
