/**
 * The calls as conferences see them, and as the relay sees conferences. Calls end inside the Calls service, which
 * knows nothing of conferences; so this wraps it, as CallRelay does: after each operation that can end an accepted
 * call, the customers of ended calls leave their conferences, and a host device that went away ends its own.
 *
 * To the relay a conference is a relayed call of many parties: `partiesOf(conferenceId)` answers with the host device
 * and the attached customers, so `relay.join` admits exactly them to the conference's room, and the relay keeps that
 * room open for as long as the conference lasts. Build it beneath the relay: `CallRelayLive.pipe(Layer.provide(
 * ConferenceCallsLive))`, with Conferences and the plain Calls below.
 */
import { Effect, Layer, Option } from "effect"
import { Calls } from "../actors/Calls.js"
import { Conferences } from "./Conferences.js"

export const ConferenceCallsLive = Layer.effect(
  Calls,
  Effect.gen(function*() {
    const calls = yield* Calls
    const conferences = yield* Conferences
    return {
      ...calls,
      partiesOf: (callId) =>
        Effect.flatMap(conferences.partiesOf(callId), (parties) => Option.isSome(parties) ? Effect.succeed(parties) : calls.partiesOf(callId)),
      hangUp: (clientId, callId) => Effect.ensuring(calls.hangUp(clientId, callId), conferences.callsEnded),
      dropClient: (clientId) => Effect.ensuring(calls.dropClient(clientId), conferences.clientGone(clientId)),
      endAllOf: (account, reason) => Effect.ensuring(calls.endAllOf(account, reason), conferences.callsEnded)
    } satisfies Calls["Type"]
  })
)
