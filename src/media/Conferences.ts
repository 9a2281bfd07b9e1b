/**
 * Host-led conferences, in memory only. A host device creates a conference and brings its customers in through
 * their ordinary calls with it: each accepted call it attaches makes that call's customer a participant. The
 * conference's relay room (keyed by the conference id, see Rooms) admits the leading host device and the customers
 * of the attached calls, nobody else. A participant is gone when the host detaches its call, when it leaves, or when
 * its call ends (hang-up, disconnect, revocation); then it is out of the room at once, and the host is told, so that
 * its device starts a new key epoch without it. The conference ends, and its room closes, when the host ends or
 * leaves it or its device goes away.
 *
 * The media keys are none of the server's business: the host's device distributes them over each participant's
 * end-to-end secured call (src/sdk/ConferenceHost.ts). Nothing about a conference is stored or logged.
 */
import { Effect, Option } from "effect"
import { makeFifoLock } from "../actors/FifoLock.js"
import { type CallParties, Calls } from "../actors/Calls.js"
import { newCallId } from "../actors/newIds.js"
import { Sessions } from "../actors/Sessions.js"
import { CallNotFound, CallStateInvalid, ConferenceFull, ConferenceNotFound, InvalidRequest } from "../domain/errors.js"
import type { CallId, CustomerId, HostId } from "../domain/ids.js"
import {
  ConferenceEnded,
  type ConferenceId,
  type ConferenceLeaveReason,
  ConferenceParticipantJoined,
  ConferenceParticipantLeft
} from "../domain/liveEvents.js"
import { Rooms } from "./Rooms.js"

/**
 * The host and up to 15 customers: each receives the others' tracks, which fits the relay's bound on received
 * tracks per participant, and each sender's slot fits the SFrame key ids of the SDK (four bits).
 */
export const MAX_CONFERENCE_PARTICIPANTS = 16

interface Participant {
  readonly callId: CallId
  readonly customerId: CustomerId
  readonly clientId: number
}

interface Conference {
  readonly id: ConferenceId
  readonly hostId: HostId
  readonly hostClient: number
  readonly participants: Map<CallId, Participant>
}

const make = Effect.gen(function*() {
  const calls = yield* Calls
  const rooms = yield* Rooms
  const sessions = yield* Sessions
  const conferences = new Map<ConferenceId, Conference>()
  // Changes one at a time. Admission to the room (partiesOf) reads without it: it runs under the room's lock, which
  // changes take in turn to get a participant out of the room.
  const lock = yield* makeFifoLock
  const locked = lock.withLock

  const ledBy = (hostClient: number, conferenceId: ConferenceId) =>
    Effect.suspend(() => {
      const conference = conferences.get(conferenceId)
      return conference?.hostClient === hostClient ? Effect.succeed(conference) : Effect.fail(new ConferenceNotFound())
    })
  const conferenceOfCall = (callId: CallId) => [...conferences.values()].find((c) => c.participants.has(callId))

  /** Takes a participant out: no longer admitted, out of the room, its call a plain call again; both sides told. */
  const remove = (conference: Conference, participant: Participant, reason: ConferenceLeaveReason) =>
    Effect.gen(function*() {
      if (!conference.participants.delete(participant.callId)) return
      yield* calls.setInConference(participant.callId, false)
      yield* rooms.leave(conference.id, participant.clientId)
      const left = { conferenceId: conference.id, callId: participant.callId, reason }
      yield* sessions.deliverToClient(participant.clientId, new ConferenceParticipantLeft(left))
      yield* sessions.deliverToClient(conference.hostClient, new ConferenceParticipantLeft({ ...left, account: participant.customerId }))
    })

  const end = (conference: Conference, reason: ConferenceEnded["reason"]) =>
    Effect.gen(function*() {
      if (!conferences.delete(conference.id)) return
      yield* rooms.close(conference.id)
      yield* Effect.forEach(conference.participants.values(), (participant) =>
        Effect.zipRight(
          calls.setInConference(participant.callId, false),
          sessions.deliverToClient(participant.clientId, new ConferenceEnded({ conferenceId: conference.id, reason }))
        ), { discard: true })
      conference.participants.clear()
    })

  /** After calls ended: their participants are gone. */
  const dropEndedCalls = Effect.suspend(() =>
    Effect.forEach([...conferences.values()], (conference) =>
      Effect.forEach([...conference.participants.values()], (participant) =>
        Effect.flatMap(calls.partiesOf(participant.callId), (parties) =>
          Option.exists(parties, (p) => p.state === "active") ? Effect.void : remove(conference, participant, "call-ended")), {
        discard: true
      }), { discard: true }))

  return {
    create: (hostClient: number, hostId: HostId) =>
      locked(Effect.gen(function*() {
        if ([...conferences.values()].some((c) => c.hostClient === hostClient)) {
          return yield* new InvalidRequest({ reason: "this device already leads a conference" })
        }
        const id = yield* newCallId
        conferences.set(id, { id, hostId, hostClient, participants: new Map() })
        return id
      })),

    /** Makes the customer of an accepted call of this host device a participant; attaching it again does nothing. */
    attach: (hostClient: number, conferenceId: ConferenceId, callId: CallId) =>
      locked(Effect.gen(function*() {
        const conference = yield* ledBy(hostClient, conferenceId)
        if (conference.participants.has(callId)) return
        const parties = yield* calls.partiesOf(callId)
        if (Option.isNone(parties) || !parties.value.clientIds.includes(hostClient)) return yield* new CallNotFound()
        if (parties.value.state !== "active") return yield* new CallStateInvalid({ state: parties.value.state })
        if (conferenceOfCall(callId)) return yield* new CallStateInvalid({ state: "in-conference" })
        if (1 + conference.participants.size >= MAX_CONFERENCE_PARTICIPANTS) {
          return yield* new ConferenceFull({ maxParticipants: MAX_CONFERENCE_PARTICIPANTS })
        }
        const clientId = parties.value.clientIds.find((id) => id !== hostClient)
        const principal = clientId === undefined ? Option.none() : yield* sessions.principal(clientId)
        if (clientId === undefined || Option.isNone(principal) || principal.value.kind !== "customer") return yield* new CallNotFound()
        const customerId = principal.value.customerId
        conference.participants.set(callId, { callId, customerId, clientId })
        yield* calls.setInConference(callId, true)
        yield* sessions.deliverToClient(clientId, new ConferenceParticipantJoined({ conferenceId, callId }))
        yield* sessions.deliverToClient(hostClient, new ConferenceParticipantJoined({ conferenceId, callId, account: customerId }))
      })),

    /** Takes a call's customer out of the conference; the call itself goes on. */
    detach: (hostClient: number, conferenceId: ConferenceId, callId: CallId) =>
      locked(Effect.gen(function*() {
        const conference = yield* ledBy(hostClient, conferenceId)
        const participant = conference.participants.get(callId)
        if (!participant) return yield* new CallNotFound()
        yield* remove(conference, participant, "detached")
      })),

    /** A customer leaves (its call goes on); the host leaving ends the conference. */
    leave: (clientId: number, conferenceId: ConferenceId) =>
      locked(Effect.gen(function*() {
        const conference = conferences.get(conferenceId)
        if (conference?.hostClient === clientId) return yield* end(conference, "ended")
        const participant = conference && [...conference.participants.values()].find((p) => p.clientId === clientId)
        if (!conference || !participant) return yield* new ConferenceNotFound()
        yield* remove(conference, participant, "left")
      })),

    end: (hostClient: number, conferenceId: ConferenceId) =>
      locked(Effect.flatMap(ledBy(hostClient, conferenceId), (conference) => end(conference, "ended"))),

    /** To be run after calls may have ended: their customers leave their conferences. */
    callsEnded: locked(dropEndedCalls),

    /** A connection went away: the conferences it led end, and calls it was in have ended. */
    clientGone: (clientId: number) =>
      locked(Effect.zipRight(
        Effect.suspend(() =>
          Effect.forEach([...conferences.values()].filter((c) => c.hostClient === clientId), (c) => end(c, "host-left"), {
            discard: true
          })
        ),
        dropEndedCalls
      )),

    /** Who is in a conference, as the relay asks about a call: the host device and the attached customers. */
    partiesOf: (conferenceId: ConferenceId) =>
      Effect.sync(() =>
        Option.map(Option.fromNullable(conferences.get(conferenceId)), (conference): CallParties => ({
          state: "active",
          clientIds: [conference.hostClient, ...[...conference.participants.values()].map((p) => p.clientId)]
        }))
      )
  } as const
})

export class Conferences extends Effect.Service<Conferences>()("tessera/media/Conferences", { effect: make }) {}
