/**
 * The relay path of a call's media: mediasoup-client's Device with a send and a receive transport to the call's
 * relay room on the server (the relay RPCs of the public contract), a producer per local track and a consumer per
 * track of the peer. Every RTCRtpSender and RTCRtpReceiver goes behind the call's SFrame contexts before it is
 * negotiated (mediasoup-client's onRtpSender / onRtpReceiver; the peer connections are created with encoded
 * insertable streams, which older Chromium requires and under which no frame leaves unprotected), so the relay
 * forwards ciphertext only; a sender or receiver that cannot be protected ends the media before anything is sent.
 *
 * The peer's tracks are learnt from the join and then from RelayProducerAdded / RelayProducerClosed. After a media
 * worker failure the server re-creates the room and says RelayRestarted: the path joins again with fresh transports.
 * When the network changes (back online, another interface) or a transport that was up drops, the path restarts
 * ICE on both transports with fresh credentials from relay.restartIce, keeping its producers and consumers.
 * RelayFailed, or a transport whose ICE fails and has not recovered within a grace period, ends the media with
 * "relay-lost". Closing the path's scope leaves the room. Nothing here is logged.
 */
import { Cause, Data, Effect, Exit, Option, Queue, Schedule, Scope } from "effect"
import { Device, type types as Ms } from "mediasoup-client"
import type { CallId } from "../../domain/ids.js"
import type { LiveEvent, RelayFailed, RelayProducerAdded, RelayProducerClosed, RelayRestarted } from "../../domain/liveEvents.js"
import type { RelayJoined, RelayTransportParameters } from "../../media/RelayParameters.js"
import type { DeviceSession } from "../DeviceSession.js"
import type { MediaFailureReason } from "./errors.js"
import type { MediaKind } from "./frameProtection.js"
import { type MediaPath, onNetworkChange, type PathContext } from "./path.js"
import { addFigures, noFigures, rtpFigures, type RtpFigures } from "./stats.js"

/** What the relay path needs of a signed-in device: its RPCs and its live events. */
export interface RelayAccess {
  readonly callId: CallId
  readonly device: Pick<DeviceSession, "rpc" | "take">
}

export interface RelayPathOptions extends PathContext {
  readonly relay: RelayAccess
}

export interface RelayPath extends MediaPath {
  readonly mode: "relay"
  /** New ICE credentials for both transports, e.g. after the network changed; one already waiting covers this one. */
  readonly restartIce: Effect.Effect<void>
  /** Joins of the relay, relay restarts (each a join again), and ICE restarts completed on both transports. */
  readonly joins: () => { readonly joins: number; readonly restarts: number; readonly iceRestarts: number }
}

type RelayEvent = RelayProducerAdded | RelayProducerClosed | RelayRestarted | RelayFailed

type Direction = "send" | "receive"

type Command =
  | RelayEvent
  | { readonly _tag: "Join" }
  | { readonly _tag: "RestartIce" }
  | { readonly _tag: "TransportFailed"; readonly session: Session; readonly direction: Direction; readonly failure: number }

/** One join of the room: the transports, producers and consumers that a relay restart replaces. */
interface Session {
  readonly scope: Scope.CloseableScope
  readonly device: Device
  readonly send: Ms.Transport
  readonly receive: Ms.Transport
  readonly producers: Map<MediaKind, Ms.Producer>
  /** By the peer's producer id. */
  readonly consumers: Map<string, Ms.Consumer>
  readonly states: Record<Direction, Ms.ConnectionState>
  /** Per direction: whether it was ever connected, and which failure it has not recovered from since, if any. */
  readonly wasConnected: Record<Direction, boolean>
  readonly failedSince: Partial<Record<Direction, number>>
}

/** A relay step that failed, with what it means for the call. */
class RelayStepFailed extends Data.TaggedError("RelayStepFailed")<{ readonly reason: MediaFailureReason }> {}

const LEAVE_TIMEOUT = "3 seconds"
/** How long a failed transport may take to recover (an ICE restart, the relay's restart) before the relay counts as lost. */
const TRANSPORT_FAILURE_GRACE = "10 seconds"
const REJOIN_ATTEMPTS = 3

const isRelayEvent = (callId: CallId) => (e: LiveEvent): e is RelayEvent =>
  (e._tag === "RelayProducerAdded" || e._tag === "RelayProducerClosed" || e._tag === "RelayRestarted" ||
    e._tag === "RelayFailed") && e.callId === callId

const transportOptions = (t: RelayTransportParameters): Ms.TransportOptions => ({
  id: t.id,
  iceParameters: { ...t.iceParameters },
  // mediasoup-client still types the deprecated `ip` beside `address`.
  iceCandidates: t.iceCandidates.map((c) => ({ ...c, ip: c.address })) as unknown as Array<Ms.IceCandidate>,
  dtlsParameters: t.dtlsParameters as unknown as Ms.DtlsParameters,
  additionalSettings: { encodedInsertableStreams: true } as Partial<RTCConfiguration>
})

/** Both directions up: the media flow. A failed direction fails the relay. */
const combined = (states: Session["states"]): RTCPeerConnectionState => {
  const both = [states.send, states.receive]
  if (both.includes("failed")) return "failed"
  if (both.every((s) => s === "connected")) return "connected"
  if (both.includes("disconnected")) return "disconnected"
  return both.includes("closed") ? "closed" : both.includes("connecting") ? "connecting" : "new"
}

/** Joins the call's relay and keeps the media on it, rejoining after a relay restart. */
export const startRelay = (options: RelayPathOptions): Effect.Effect<RelayPath, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { guard, localStream, remoteStream, events } = options
    const { callId, device } = options.relay
    const rpc = device.rpc
    const commands = yield* Queue.unbounded<Command>()
    let session: Session | undefined
    let retired = noFigures()
    let joins = 0
    let restarts = 0
    let iceRestarts = 0
    let failures = 0

    /** Runs a relay RPC for mediasoup-client's callbacks; its failure is remembered with what it means. */
    let lastFailure: MediaFailureReason | undefined
    const forClient = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>): Promise<A> =>
      Effect.runPromiseExit(effect).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        const error = Cause.failureOption(exit.cause)
        lastFailure = Option.match(error, {
          onNone: () => "relay-lost",
          onSome: (e) => (e._tag === "InvalidRequest" ? "negotiation" : "relay-lost")
        })
        throw new Error(Option.match(error, { onNone: () => "relay request interrupted", onSome: (e) => e._tag }))
      })

    /** A browser step of mediasoup-client; a failure is a refused sender or receiver, or a refused negotiation. */
    let protectionRefused = false
    const clientStep = <A>(run: () => Promise<A> | A) =>
      Effect.tryPromise({
        try: async () => run(),
        catch: () => new RelayStepFailed({ reason: protectionRefused ? "frame-protection" : lastFailure ?? "negotiation" })
      })
    const guarded = (protect: () => void) => {
      try {
        protect()
      } catch (e) {
        protectionRefused = true
        throw e
      }
    }

    const figuresOf = (s: Session) =>
      Effect.tryPromise(() => Promise.all([s.send.getStats(), s.receive.getStats()])).pipe(
        Effect.map(rtpFigures),
        Effect.orElseSucceed(noFigures)
      )

    const dropConsumer = (s: Session, producerId: string) =>
      Effect.sync(() => {
        const consumer = s.consumers.get(producerId)
        if (!consumer) return
        s.consumers.delete(producerId)
        remoteStream.removeTrack(consumer.track)
        consumer.close()
      })

    const retire = (s: Session) =>
      Effect.gen(function*() {
        if (session === s) session = undefined
        retired = addFigures(retired, yield* figuresOf(s))
        yield* Scope.close(s.scope, Exit.void)
      })

    // An ICE restart when the network changes or a transport that was up drops. Bursts (an interface change fires
    // several events) coalesce: while one restart waits in the queue, more triggers add nothing.
    let restartQueued = false
    const requestIceRestart = () => {
      if (restartQueued) return
      restartQueued = true
      Queue.unsafeOffer(commands, { _tag: "RestartIce" })
    }
    yield* onNetworkChange(requestIceRestart)

    // A failed transport gets the grace to recover: through an ICE restart, or, when its worker died, the relay's
    // restart (the transport may fail before the server has re-created the room and says RelayRestarted).
    const onTransportState = (s: Session, direction: Direction, state: Ms.ConnectionState) => {
      if (session !== s) return
      s.states[direction] = state
      if (state === "connected") {
        s.wasConnected[direction] = true
        delete s.failedSince[direction]
      } else if (s.wasConnected[direction] && (state === "disconnected" || state === "failed")) {
        requestIceRestart()
      }
      const connection = combined(s.states)
      events.connection(connection === "failed" ? "disconnected" : connection)
      if (state === "failed" && s.failedSince[direction] === undefined) {
        const failure = ++failures
        s.failedSince[direction] = failure
        Effect.runFork(Effect.delay(
          Queue.offer(commands, { _tag: "TransportFailed", session: s, direction, failure }),
          TRANSPORT_FAILURE_GRACE
        ))
      }
    }

    /**
     * Fresh ICE credentials from the relay for both transports of the current session, applied by mediasoup-client
     * (a new ICE generation; DTLS, producers and consumers stay). A relay that cannot serve it now changes nothing:
     * one being re-created says RelayRestarted and the path joins again; a transport that stays failed is lost.
     */
    const restartIce = Effect.suspend(() => {
      restartQueued = false
      const s = session
      if (!s) return Effect.void
      return Effect.forEach(["send", "receive"] as const, (direction) =>
        Effect.gen(function*() {
          const { iceParameters } = yield* rpc.relay.restartIce({ callId, direction })
          const transport = direction === "send" ? s.send : s.receive
          yield* Effect.tryPromise(() => transport.restartIce({ iceParameters: { ...iceParameters } }))
        }), { discard: true }).pipe(
          Effect.zipRight(Effect.sync(() => void iceRestarts++)),
          Effect.ignore
        )
    })

    const consume = (s: Session, producerId: string) =>
      Effect.gen(function*() {
        if (s.consumers.has(producerId)) return
        // A track that is gone already (a stale event, a restart in between) is skipped: later events say more.
        // So is one the server cannot offer in a form this side can read (a defect, not a typed error).
        const offered = yield* rpc.relay.consume({ callId, producerId, rtpCapabilities: s.device.recvRtpCapabilities as never }).pipe(
          Effect.option,
          Effect.catchAllDefect(() => Effect.succeedNone)
        )
        if (Option.isNone(offered)) return
        const { id, kind, rtpParameters } = offered.value
        const consumer = yield* clientStep(() =>
          s.receive.consume({
            id,
            producerId,
            kind,
            rtpParameters: rtpParameters as unknown as Ms.RtpParameters,
            onRtpReceiver: (receiver) => guarded(() => guard.protectReceiver(receiver, kind))
          })
        )
        s.consumers.set(producerId, consumer)
        remoteStream.addTrack(consumer.track)
        yield* Effect.ignore(rpc.relay.resumeConsumer({ callId, consumerId: id }))
      })

    const produce = (s: Session, track: MediaStreamTrack, kind: MediaKind) =>
      Effect.gen(function*() {
        const vp8 = s.device.sendRtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === "video/vp8")
        if (kind === "video" && !vp8) return yield* new RelayStepFailed({ reason: "negotiation" })
        const producer = yield* clientStep(() =>
          s.send.produce({
            track,
            stopTracks: false,
            ...(kind === "video" && vp8 ? { codec: vp8 } : {}),
            onRtpSender: (sender) => guarded(() => guard.protectSender(sender, kind))
          })
        )
        s.producers.set(kind, producer)
      })

    /** Transports, producers and consumers for one join; all of it closes with the session's scope. */
    const setUp = (joined: RelayJoined) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const built = Effect.gen(function*() {
          const client = yield* clientStep(async () => {
            const d = new Device({ handlerName: "Chrome111" })
            await d.load({ routerRtpCapabilities: joined.routerRtpCapabilities as unknown as Ms.RtpCapabilities })
            return d
          })
          if (!client.canProduce("audio") || !client.canProduce("video")) return yield* new RelayStepFailed({ reason: "negotiation" })
          const transport = (direction: "send" | "receive") =>
            Effect.acquireRelease(
              clientStep(() =>
                direction === "send"
                  ? client.createSendTransport(transportOptions(joined.sendTransport))
                  : client.createRecvTransport(transportOptions(joined.receiveTransport))
              ),
              (t) => Effect.sync(() => t.close())
            )
          const send = yield* transport("send")
          const receive = yield* transport("receive")
          const s: Session = {
            scope,
            device: client,
            send,
            receive,
            producers: new Map(),
            consumers: new Map(),
            states: { send: "new", receive: "new" },
            wasConnected: { send: false, receive: false },
            failedSince: {}
          }
          yield* Scope.addFinalizer(scope, Effect.sync(() => {
            for (const consumer of s.consumers.values()) remoteStream.removeTrack(consumer.track)
            s.consumers.clear()
          }))
          for (const [t, direction] of [[send, "send"], [receive, "receive"]] as const) {
            t.on("connect", ({ dtlsParameters }, ok, ko) => {
              forClient(rpc.relay.connectTransport({ callId, direction, dtlsParameters: dtlsParameters as never })).then(ok, ko)
            })
            t.on("connectionstatechange", (state) => onTransportState(s, direction, state))
          }
          send.on("produce", ({ kind, rtpParameters }, ok, ko) => {
            forClient(rpc.relay.produce({ callId, kind, rtpParameters: rtpParameters as never })).then(
              ({ producerId }) => ok({ id: producerId }),
              ko
            )
          })
          return s
        })
        return yield* built.pipe(Scope.extend(scope), Effect.tapError(() => Scope.close(scope, Exit.void)))
      })

    const join = Effect.gen(function*() {
      lastFailure = undefined
      const joined = yield* rpc.relay.join({ callId }).pipe(
        Effect.mapError((e) =>
          new RelayStepFailed({ reason: e._tag === "NotPermitted" || e._tag === "CallStateInvalid" ? "relay-refused" : "relay-unavailable" })
        )
      )
      joins++
      const s = yield* setUp(joined)
      session = s
      events.connection("connecting")
      yield* Effect.gen(function*() {
        for (const track of localStream.getTracks()) {
          if (track.kind === "audio" || track.kind === "video") yield* produce(s, track, track.kind)
        }
        for (const { producerId } of joined.producers) yield* consume(s, producerId)
      }).pipe(Effect.tapError(() => retire(s)))
    })

    const rejoin = Effect.gen(function*() {
      restarts++
      if (session) yield* retire(session)
      events.connection("connecting")
      yield* join.pipe(
        Effect.retry({
          times: REJOIN_ATTEMPTS - 1,
          schedule: Schedule.spaced("1 second"),
          while: (e) => e.reason === "relay-unavailable" || e.reason === "relay-lost"
        }),
        Effect.mapError((e) => (e.reason === "relay-unavailable" ? new RelayStepFailed({ reason: "relay-lost" }) : e))
      )
    })

    const handle = (command: Command): Effect.Effect<void, RelayStepFailed> => {
      switch (command._tag) {
        case "Join":
          return join
        case "RestartIce":
          return restartIce
        case "TransportFailed":
          return command.session === session && command.session.failedSince[command.direction] === command.failure
            ? Effect.fail(new RelayStepFailed({ reason: "relay-lost" }))
            : Effect.void
        case "RelayProducerAdded":
          return session ? consume(session, command.producerId) : Effect.void
        case "RelayProducerClosed":
          return session ? dropConsumer(session, command.producerId) : Effect.void
        case "RelayRestarted":
          return rejoin
        case "RelayFailed":
          return Effect.fail(new RelayStepFailed({ reason: "relay-lost" }))
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (session) yield* Scope.close(session.scope, Exit.void)
        session = undefined
        if (joins > 0) yield* Effect.ignore(Effect.timeout(rpc.relay.leave({ callId }), LEAVE_TIMEOUT))
      })
    )
    yield* device.take(isRelayEvent(callId)).pipe(
      Effect.flatMap((event) => Queue.offer(commands, event)),
      Effect.forever,
      Effect.ignore,
      Effect.forkScoped
    )
    yield* Queue.offer(commands, { _tag: "Join" })
    yield* Queue.take(commands).pipe(
      Effect.flatMap(handle),
      Effect.forever,
      // A defect (a bug, or input from the relay that nothing here expected) ends the media like a failed step,
      // so that the call is told instead of the path silently doing nothing more.
      Effect.catchAllDefect(() => Effect.fail(new RelayStepFailed({ reason: "negotiation" }))),
      Effect.catchAll((e) =>
        Effect.zipRight(session ? retire(session) : Effect.void, events.failed(e.reason))
      ),
      Effect.forkScoped
    )

    const replaceTrack = (kind: MediaKind, track: MediaStreamTrack) =>
      Effect.suspend(() => {
        const producer = session?.producers.get(kind)
        return producer ? Effect.tryPromise(() => producer.replaceTrack({ track })) : Effect.void
      })

    return {
      mode: "relay",
      replaceTrack,
      restartIce: Effect.sync(requestIceRestart),
      joins: () => ({ joins, restarts, iceRestarts }),
      figures: Effect.suspend((): Effect.Effect<Readonly<Record<MediaKind, RtpFigures>>> =>
        session ? Effect.map(figuresOf(session), (open) => addFigures(retired, open)) : Effect.succeed(retired)
      )
    } satisfies RelayPath
  })
