/** Host-led conferences: the leading host device's commands, and a participant leaving. */
import { Effect } from "effect"
import { Conferences } from "../../media/Conferences.js"
import { ConferenceRpcs, CurrentHost } from "../contract.js"

export const ConferenceHandlersLive = ConferenceRpcs.toLayer(Effect.gen(function*() {
  const conferences = yield* Conferences
  return {
    "conference.create": (_, { clientId }) =>
      Effect.flatMap(CurrentHost, (host) => conferences.create(clientId, host.hostId)).pipe(
        Effect.map((conferenceId) => ({ conferenceId }))
      ),
    "conference.attach": ({ callId, conferenceId }, { clientId }) => conferences.attach(clientId, conferenceId, callId),
    "conference.detach": ({ callId, conferenceId }, { clientId }) => conferences.detach(clientId, conferenceId, callId),
    "conference.end": ({ conferenceId }, { clientId }) => conferences.end(clientId, conferenceId),
    "conference.leave": ({ conferenceId }, { clientId }) => conferences.leave(clientId, conferenceId)
  }
}))
