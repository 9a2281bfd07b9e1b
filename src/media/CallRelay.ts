/**
 * The media relay of calls: who may join a call's relay room (its two parties, once the call was accepted), and
 * that a call's room closes, with all its transports, as soon as the call ends (hang-up, disconnect, revocation).
 *
 * Calls end inside the Calls service, which knows nothing of media; so the relay wraps it: after each operation
 * that can end an accepted call, the rooms whose call is no longer active are closed. Closing takes the room's lock,
 * which admission holds while a party joins, so a join and the end of its call cannot cross.
 */
import { Effect, Layer, Option } from "effect"
import { Calls } from "../actors/Calls.js"
import { CallStateInvalid, NotPermitted } from "../domain/errors.js"
import type { CallId } from "../domain/ids.js"
import { Rooms } from "./Rooms.js"

/** Succeeds when `clientId` is a party of the accepted call `callId`. */
export const admitToCallRelay = (calls: Calls["Type"], clientId: number, callId: CallId) =>
  Effect.flatMap(calls.partiesOf(callId), (parties): Effect.Effect<void, NotPermitted | CallStateInvalid> => {
    if (Option.isNone(parties) || !parties.value.clientIds.includes(clientId)) return Effect.fail(new NotPermitted())
    if (parties.value.state !== "active") return Effect.fail(new CallStateInvalid({ state: parties.value.state }))
    return Effect.void
  })

/** Calls whose endings close the relay rooms of the ended calls. */
const CallsClosingRooms = Layer.effect(
  Calls,
  Effect.gen(function*() {
    const calls = yield* Calls
    const rooms = yield* Rooms
    const closeIfEnded = (callId: CallId) =>
      Effect.flatMap(calls.partiesOf(callId), (parties) =>
        Option.exists(parties, (p) => p.state === "active") ? Effect.void : rooms.close(callId))
    const closeEnded = Effect.flatMap(rooms.openRooms, (ids) => Effect.forEach(ids, closeIfEnded, { discard: true }))
    return {
      ...calls,
      hangUp: (clientId, callId) => Effect.ensuring(calls.hangUp(clientId, callId), closeIfEnded(callId)),
      dropClient: (clientId) => Effect.ensuring(calls.dropClient(clientId), closeEnded),
      endAllOf: (account, reason) => Effect.ensuring(calls.endAllOf(account, reason), closeEnded)
    } satisfies Calls["Type"]
  })
)

/**
 * Relay rooms (listen addresses from the environment) and the Calls that close them. Needs the plain Calls
 * service below it: `CallRelayLive.pipe(Layer.provide(CallsLive))`.
 */
export const CallRelayLive = CallsClosingRooms.pipe(Layer.provideMerge(Rooms.fromEnv))
