/**
 * Relay rooms: one per relayed call, keyed by the call id (a conference will key its room the same way; a room
 * has any number of participants). A room is a mediasoup router from the WorkerPool; each participant has one send
 * and one receive WebRtcTransport (UDP and TCP, UDP preferred, no SCTP), its producers, and its consumers of the
 * other participants' tracks. Consumers start paused; the client resumes them once its side is ready. A participant
 * whose network changed asks for fresh ICE credentials of a transport (an ICE restart) and keeps its media.
 *
 * A worker that dies takes its routers with it. Requests in between fail with MediaRelayUnavailable; once the pool
 * has replaced the worker, every room that lived on it gets a fresh router and its participants RelayRestarted, so
 * they join again (or RelayFailed when no router can be had, and the room is gone). When the replacement will not
 * start, the rooms move to another live worker at once, or end with RelayFailed.
 *
 * Who may join is decided by the caller (`admit`), inside the room's lock, so that a room cannot outlive the call
 * that admitted it. Rooms exist in memory only; nothing about them (ids, addresses, SDP, ICE) is stored or logged.
 */
import { Effect, Layer, Option, Queue, RcMap, Schema } from "effect"
import type { types } from "mediasoup"
import { makeFifoLock } from "../actors/FifoLock.js"
import { Sessions } from "../actors/Sessions.js"
import { InvalidRequest, MediaRelayUnavailable, RelayNotJoined } from "../domain/errors.js"
import type { CallId } from "../domain/ids.js"
import { type LiveEvent, RelayFailed, RelayProducerAdded, RelayProducerClosed, RelayRestarted } from "../domain/liveEvents.js"
import { listenInfosOf, RELAY_MEDIA_CODECS, RelayConfig } from "./RelayConfig.js"
import type {
  DtlsParameters,
  IceParameters,
  MediaKind,
  RelayConsumer,
  RelayJoined,
  RelayTransportParameters,
  RtpCapabilities,
  RtpParameters
} from "./RelayParameters.js"
import { RtpParameters as RtpParametersSchema } from "./RelayParameters.js"
import { type WorkerChange, WorkerPool } from "./WorkerPool.js"

export type RoomId = CallId

/** A browser sends at most audio, camera and screen; a conference of 16 gives each participant 30 tracks to receive. */
export const MAX_PRODUCERS_PER_PARTICIPANT = 4
export const MAX_CONSUMERS_PER_PARTICIPANT = 64

interface Participant {
  readonly clientId: number
  readonly send: types.WebRtcTransport
  readonly receive: types.WebRtcTransport
  readonly producers: Map<string, types.Producer>
  readonly consumers: Map<string, types.Consumer>
}

interface Room {
  readonly id: RoomId
  router: types.Router
  /** Pool slot of the router's worker: its WorkerReplaced or WorkerLost means this router is gone. */
  workerIndex: number
  readonly participants: Map<number, Participant>
}

const isNamed = (cause: unknown, name: string) => cause instanceof Error && cause.name === name

/** mediasoup's reason for refusing a client's parameters, for that client only (never logged). */
const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause)).slice(0, 200)

/**
 * mediasoup's parameters as plain data for the wire: without the keys it sets to `undefined` (the contract's
 * optional fields are absent or present, never undefined). The contract's schemas check them on the way out;
 * mediasoup types codec parameters as `unknown`, hence the casts.
 */
const plainData = <A>(value: unknown): A => JSON.parse(JSON.stringify(value)) as A

const transportParameters = (transport: types.WebRtcTransport): RelayTransportParameters =>
  plainData({
    id: transport.id,
    iceParameters: transport.iceParameters,
    iceCandidates: transport.iceCandidates,
    dtlsParameters: transport.dtlsParameters
  })

const make = Effect.gen(function*() {
  const pool = yield* WorkerPool
  const sessions = yield* Sessions
  const listenInfos = listenInfosOf(yield* RelayConfig)
  const rooms = new Map<RoomId, Room>()
  // One operation at a time per room; a room's lock lives while anyone holds or waits for it.
  const locks = yield* RcMap.make({ lookup: (_: RoomId) => makeFifoLock })
  const locked = <A, E>(roomId: RoomId, effect: Effect.Effect<A, E>) =>
    Effect.scoped(Effect.flatMap(RcMap.get(locks, roomId), (lock) => lock.withLock(effect)))

  const deliver = (clientIds: Iterable<number>, event: LiveEvent) =>
    Effect.forEach(clientIds, (id) => sessions.deliverToClient(id, event), { discard: true })
  const othersIn = (room: Room, clientId: number) => [...room.participants.keys()].filter((id) => id !== clientId)

  /** A mediasoup request on a client's behalf: refused input is InvalidRequest, a router gone with its worker not. */
  const request = <A>(room: Room, run: () => Promise<A>): Effect.Effect<A, InvalidRequest | MediaRelayUnavailable> =>
    Effect.tryPromise({
      try: run,
      catch: (cause) =>
        room.router.closed || isNamed(cause, "InvalidStateError")
          ? new MediaRelayUnavailable()
          : new InvalidRequest({ reason: reasonOf(cause) })
    })

  const createTransport = (router: types.Router) =>
    Effect.tryPromise({
      try: () =>
        router.createWebRtcTransport({
          listenInfos,
          preferUdp: true,
          enableSctp: false,
          initialAvailableOutgoingBitrate: 1_000_000
        }),
      catch: (cause) => cause
    }).pipe(
      // A TypeError here is our own configuration's fault, not the client's.
      Effect.catchAll((cause) => cause instanceof TypeError ? Effect.die(cause) : Effect.fail(new MediaRelayUnavailable()))
    )

  const closeRoom = (room: Room) =>
    Effect.sync(() => {
      if (rooms.get(room.id) === room) rooms.delete(room.id)
      room.router.close()
    })

  /** Closes a participant's transports (with them its producers, and the others' consumers of those). */
  const removeParticipant = (room: Room, participant: Participant) =>
    Effect.suspend(() => {
      const tracks = [...participant.producers.keys()]
      participant.send.close()
      participant.receive.close()
      room.participants.delete(participant.clientId)
      const others = othersIn(room, participant.clientId)
      return Effect.forEach(tracks, (producerId) => deliver(others, new RelayProducerClosed({ callId: room.id, producerId })), {
        discard: true
      })
    })

  /** A fresh router for a room whose router died; its participants (but `except`) are told to join again. */
  const recreate = (room: Room, except?: number) =>
    Effect.gen(function*() {
      const pooled = yield* pool.createRouter(RELAY_MEDIA_CODECS)
      const former = [...room.participants.keys()].filter((id) => id !== except)
      room.participants.clear()
      room.router = pooled.router
      room.workerIndex = pooled.workerIndex
      yield* deliver(former, new RelayRestarted({ callId: room.id }))
      return room
    })

  // The worker replaced: the rooms get a router on it (or on another). The worker lost (its replacement would not
  // start): on another worker if there is one, else RelayFailed now rather than when the clients' ICE gives up.
  const onWorkerChange = ({ index }: WorkerChange) =>
    Effect.gen(function*() {
      const affected = [...rooms.values()].filter((room) => room.workerIndex === index)
      let failed = 0
      yield* Effect.forEach(affected, (room) =>
        locked(room.id, Effect.suspend(() => {
          if (rooms.get(room.id) !== room || !room.router.closed) return Effect.void
          return recreate(room).pipe(
            Effect.asVoid,
            Effect.catchAll(() => {
              failed++
              rooms.delete(room.id)
              return deliver(room.participants.keys(), new RelayFailed({ callId: room.id }))
            })
          )
        })), { discard: true })
      if (affected.length > 0) {
        yield* Effect.logWarning("relay rooms re-created after a media worker failure").pipe(
          Effect.annotateLogs({ rooms: affected.length, failed })
        )
      }
    })

  const replacements = yield* pool.subscribeReplacements
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(replacements), onWorkerChange)))
  yield* Effect.addFinalizer(() => Effect.sync(() => {
    for (const room of rooms.values()) room.router.close()
    rooms.clear()
  }))

  /** Runs `use` on the caller's participation in a room, under the room's lock. */
  const asParticipant = <A, E>(
    roomId: RoomId,
    clientId: number,
    use: (room: Room, participant: Participant) => Effect.Effect<A, E>
  ) =>
    locked(roomId, Effect.suspend((): Effect.Effect<A, E | RelayNotJoined | MediaRelayUnavailable> => {
      const room = rooms.get(roomId)
      const participant = room?.participants.get(clientId)
      if (!room || !participant) return Effect.fail(new RelayNotJoined())
      if (room.router.closed) return Effect.fail(new MediaRelayUnavailable())
      return use(room, participant)
    }))

  /** Joins (or joins again, replacing the earlier transports) the room of `roomId`, creating it if need be. */
  const join = <E>(roomId: RoomId, clientId: number, admit: Effect.Effect<void, E>) =>
    locked(roomId, Effect.gen(function*() {
      yield* admit
      let room = rooms.get(roomId)
      if (room?.router.closed) room = yield* recreate(room, clientId)
      if (!room) {
        const pooled = yield* pool.createRouter(RELAY_MEDIA_CODECS)
        room = { id: roomId, router: pooled.router, workerIndex: pooled.workerIndex, participants: new Map() }
        rooms.set(roomId, room)
      }
      const current = room
      const earlier = current.participants.get(clientId)
      if (earlier) yield* removeParticipant(current, earlier)
      const send = yield* createTransport(current.router)
      const receive = yield* createTransport(current.router).pipe(Effect.tapError(() => Effect.sync(() => send.close())))
      current.participants.set(clientId, { clientId, send, receive, producers: new Map(), consumers: new Map() })
      const producers = [...current.participants.values()].flatMap((participant) =>
        participant.clientId === clientId
          ? []
          : [...participant.producers.values()].map((producer) => ({ producerId: producer.id, kind: producer.kind }))
      )
      return {
        routerRtpCapabilities: plainData<RtpCapabilities>(current.router.rtpCapabilities),
        sendTransport: transportParameters(send),
        receiveTransport: transportParameters(receive),
        producers
      } satisfies RelayJoined
    }).pipe(
      // A room nobody managed to join does not stay open.
      Effect.tapError(() => Effect.suspend(() => {
        const room = rooms.get(roomId)
        return room && room.participants.size === 0 ? closeRoom(room) : Effect.void
      }))
    ))

  const connectTransport = (roomId: RoomId, clientId: number, direction: "send" | "receive", dtlsParameters: DtlsParameters) =>
    asParticipant(roomId, clientId, (room, participant) => {
      const transport = direction === "send" ? participant.send : participant.receive
      return request(room, () => transport.connect({ dtlsParameters: dtlsParameters as types.DtlsParameters }))
    })

  /** New ICE credentials for one of the participant's transports; the old ones stay valid until the new are used. */
  const restartIce = (roomId: RoomId, clientId: number, direction: "send" | "receive") =>
    asParticipant(roomId, clientId, (room, participant) => {
      const transport = direction === "send" ? participant.send : participant.receive
      return Effect.map(request(room, () => transport.restartIce()), (ice) => plainData<IceParameters>(ice))
    })

  const produce = (roomId: RoomId, clientId: number, kind: MediaKind, rtpParameters: RtpParameters) =>
    asParticipant(roomId, clientId, (room, participant) =>
      Effect.gen(function*() {
        if (participant.producers.size >= MAX_PRODUCERS_PER_PARTICIPANT) {
          return yield* new InvalidRequest({ reason: `at most ${MAX_PRODUCERS_PER_PARTICIPANT} tracks per participant` })
        }
        // mediasoup itself would take, say, a "video" track of Opus.
        if (!rtpParameters.codecs.every((codec) => codec.mimeType.toLowerCase().startsWith(`${kind}/`))) {
          return yield* new InvalidRequest({ reason: `every codec of a ${kind} track must be ${kind}/*` })
        }
        const producer = yield* request(room, () =>
          participant.send.produce({ kind, rtpParameters: rtpParameters as types.RtpParameters }))
        participant.producers.set(producer.id, producer)
        producer.observer.once("close", () => participant.producers.delete(producer.id))
        yield* deliver(othersIn(room, clientId), new RelayProducerAdded({ callId: room.id, producerId: producer.id, kind }))
        return producer.id
      }))

  const consume = (roomId: RoomId, clientId: number, producerId: string, rtpCapabilities: RtpCapabilities) =>
    asParticipant(roomId, clientId, (room, participant) =>
      Effect.gen(function*() {
        const ofOthers = [...room.participants.values()].some((other) =>
          other.clientId !== clientId && other.producers.has(producerId))
        if (!ofOthers) return yield* new InvalidRequest({ reason: "no such track in this relay" })
        if (participant.consumers.size >= MAX_CONSUMERS_PER_PARTICIPANT) {
          return yield* new InvalidRequest({ reason: `at most ${MAX_CONSUMERS_PER_PARTICIPANT} received tracks per participant` })
        }
        const capabilities = rtpCapabilities as types.RtpCapabilities
        if (!room.router.canConsume({ producerId, rtpCapabilities: capabilities })) {
          return yield* new InvalidRequest({ reason: "these RTP capabilities cannot receive this track" })
        }
        const consumer = yield* request(room, () =>
          participant.receive.consume({ producerId, rtpCapabilities: capabilities, paused: true }))
        // What goes back must be what the contract says (it is encoded with the same schema); a consumer whose
        // parameters are not, is not kept.
        const rtpParameters = Schema.decodeUnknownOption(RtpParametersSchema)(plainData(consumer.rtpParameters))
        if (Option.isNone(rtpParameters)) {
          consumer.close()
          return yield* new InvalidRequest({ reason: "this track cannot be received: its parameters are not valid" })
        }
        participant.consumers.set(consumer.id, consumer)
        consumer.observer.once("close", () => participant.consumers.delete(consumer.id))
        return { id: consumer.id, producerId, kind: consumer.kind, rtpParameters: rtpParameters.value } satisfies RelayConsumer
      }))

  const resumeConsumer = (roomId: RoomId, clientId: number, consumerId: string) =>
    asParticipant(roomId, clientId, (room, participant) => {
      const consumer = participant.consumers.get(consumerId)
      return consumer
        ? request(room, () => consumer.resume())
        : Effect.fail(new InvalidRequest({ reason: "no such received track" }))
    })

  /** Leaves the room; the last one out closes it. Leaving a room one is not in does nothing. */
  const leave = (roomId: RoomId, clientId: number) =>
    locked(roomId, Effect.gen(function*() {
      const room = rooms.get(roomId)
      if (!room) return
      const participant = room.participants.get(clientId)
      if (participant) yield* removeParticipant(room, participant)
      if (room.participants.size === 0) yield* closeRoom(room)
    }))

  return {
    join,
    connectTransport,
    restartIce,
    produce,
    consume,
    resumeConsumer,
    leave,
    /** Closes a room with all its transports, e.g. when its call ended (the parties learn that from the call). */
    close: (roomId: RoomId) =>
      locked(roomId, Effect.suspend(() => {
        const room = rooms.get(roomId)
        return room ? closeRoom(room) : Effect.void
      })),
    openRooms: Effect.sync((): ReadonlyArray<RoomId> => [...rooms.keys()]),
    /** The room's router, for in-process observers only (the tests tap the relayed RTP there). */
    routerOf: (roomId: RoomId) => Effect.sync(() => Option.fromNullable(rooms.get(roomId)?.router))
  } as const
})

export class Rooms extends Effect.Service<Rooms>()("tessera/media/Rooms", { scoped: make }) {
  /** Rooms as the server runs them: listen addresses from the environment. */
  static readonly fromEnv = Rooms.Default.pipe(Layer.provide(RelayConfig.fromEnv))
}
