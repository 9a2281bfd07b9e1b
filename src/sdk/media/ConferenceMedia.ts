/**
 * A conference's media in the browser: this device's camera and microphone into the conference's relay room and
 * every other participant's tracks back (relay.ts, with the conference id as the room's call id), every sender
 * behind the device's conference sender (always the current epoch's key: a new epoch switches at once) and every
 * receiver behind a conference receiver (any epoch this device holds; other frames are dropped).
 *
 * The server is not told who is who, and the relay must not be able to say: a received track belongs to the sender
 * slot in the SFrame key id of its first frame that opens (the key id is authenticated with the frame). From then
 * on the track takes frames of that slot only, and none of this device's own slot; the others are dropped.
 *
 * Fail closed: support is checked before anything is captured; a sender or receiver that cannot be protected ends
 * the media; no frame leaves without the current key, no frame plays that did not open. When the device is out of
 * the conference (its keys end, or `left` completes) the media stop. Closing the scope leaves the room and stops
 * the tracks. Nothing here is logged.
 */
import { Deferred, Effect, Exit, Option, Scope, Stream, SubscriptionRef } from "effect"
import type { KeysDestroyed } from "../../crypto/errors.js"
import type { SFrameCipherSuiteId } from "../../crypto/sframe.js"
import type { CallId } from "../../domain/ids.js"
import type { ConferenceId } from "../../domain/liveEvents.js"
import type { ConferenceKeys } from "../ConferenceEpochs.js"
import { keyIdParts } from "../ConferenceKeys.js"
import type { DeviceSession } from "../DeviceSession.js"
import { type EncodedTransformUnsupported, type MediaCaptureFailed, MediaConnectionFailed, type MediaFailureReason } from "./errors.js"
import { type FrameCounts, type MediaKind, protectReceiver, protectSender } from "./frameProtection.js"
import { addCounts, captureLocalMedia, copyCounts, frameCounts } from "./localMedia.js"
import type { FrameGuard, PathContext } from "./path.js"
import { type RelayPath, startRelay } from "./relay.js"
import { addFigures, noFigures, rtpFigures, type RtpFigures } from "./stats.js"
import { requireEncodedTransform } from "./support.js"

export interface ConferenceMediaOptions {
  /** A signed-in device of the conference: the host leading it, or a customer whose call is attached. */
  readonly device: Pick<DeviceSession, "rpc" | "take">
  readonly conferenceId: ConferenceId
  /** The device's conference keys: `leadConference`'s or `joinConference`'s. */
  readonly keys: ConferenceKeys
  /**
   * Completes when the device is out of the conference (HostedConference's `ended`, ConferenceMember's `left`): the
   * media stop then even if no key ever came. Without it they stop when the keys end.
   */
  readonly left?: Effect.Effect<unknown>
  /** What to capture; camera and microphone unless given. */
  readonly constraints?: MediaStreamConstraints
}

/** One other participant as this device sees it: its sender slot and its decrypted tracks. */
export interface ConferenceParticipantMedia {
  readonly slot: number
  readonly stream: MediaStream
}

/** Why the media ended: as a call's, or "left": the device is out of the conference (its keys are gone). */
export type ConferenceMediaEnd = MediaFailureReason | "left"

export interface ConferenceMediaState {
  readonly connection: RTCPeerConnectionState
  /** Set once the media have ended. */
  readonly failure?: ConferenceMediaEnd
}

export interface ConferenceParticipantStats {
  readonly slot: number
  readonly audio: RtpFigures
  readonly video: RtpFigures
  readonly received: Readonly<Record<MediaKind, FrameCounts>>
}

export interface ConferenceMediaStats {
  readonly sframeSuite: SFrameCipherSuiteId
  /** The epoch this device sends under now, and its slot in it; absent before the first key and after the end. */
  readonly epoch?: number
  readonly slot?: number
  readonly connectionState: RTCPeerConnectionState
  /** Times this device joined the room (once, plus once per relay restart), and the restarts. */
  readonly relayJoins: number
  readonly relayRestarts: number
  readonly muted: Readonly<Record<MediaKind, boolean>>
  /** RTP of all tracks, sent and received. */
  readonly audio: RtpFigures
  readonly video: RtpFigures
  /** SFrame per direction and kind; received frames refused for their slot count as dropped. */
  readonly sent: Readonly<Record<MediaKind, FrameCounts>>
  readonly received: Readonly<Record<MediaKind, FrameCounts>>
  /** The participants shown now, by slot, with what their tracks received. */
  readonly participants: ReadonlyArray<ConferenceParticipantStats>
}

export interface ConferenceMedia {
  readonly sframeSuite: SFrameCipherSuiteId
  /** The captured tracks (for a self view); the camera track changes on switchCamera. */
  readonly localStream: MediaStream
  /** The other participants whose frames opened, by slot; a track goes when its sender stops sending it. */
  readonly participants: SubscriptionRef.SubscriptionRef<ReadonlyArray<ConferenceParticipantMedia>>
  readonly state: SubscriptionRef.SubscriptionRef<ConferenceMediaState>
  /** Completes once the device is connected to the room; fails if the media end first ("left" comes as "closed"). */
  readonly awaitConnected: Effect.Effect<void, MediaConnectionFailed>
  /** Mutes or unmutes this device's microphone or camera (the others get silence or black frames). */
  readonly setMuted: (kind: MediaKind, muted: boolean) => Effect.Effect<void>
  /** Opens another camera and sends it instead, without renegotiation. */
  readonly switchCamera: (constraints?: MediaTrackConstraints) => Effect.Effect<void, MediaCaptureFailed>
  readonly stats: Effect.Effect<ConferenceMediaStats>
}

/** A replay window wide enough for audio and video frames of one sender, which share a counter but not a track. */
const REPLAY_WINDOW = 1024

/** A track the relay handed over, with the receiver it came through. */
interface RemoteTrack {
  readonly track: MediaStreamTrack
  readonly receiver: RTCRtpReceiver
  readonly counts: Record<MediaKind, FrameCounts>
  /** The sender slot of its first frame that opened. */
  slot: number | undefined
  /** Handed over by the relay and not yet taken back. */
  present: boolean
}

/**
 * Starts this device's media in the conference: refuses with EncodedTransformUnsupported before capturing anything
 * when frames cannot be encrypted, then captures and joins the conference's relay room.
 */
export const startConferenceMedia = (
  options: ConferenceMediaOptions
): Effect.Effect<ConferenceMedia, EncodedTransformUnsupported | MediaCaptureFailed | KeysDestroyed, Scope.Scope> =>
  Effect.gen(function*() {
    yield* requireEncodedTransform
    const { device, conferenceId, keys } = options
    const opener = yield* Effect.acquireRelease(
      keys.createReceiver({ replayWindow: REPLAY_WINDOW }),
      (r) => Effect.sync(() => r.destroy())
    )
    const local = yield* captureLocalMedia(options.constraints ?? { audio: true, video: true })
    const sent = frameCounts()
    const participants = yield* SubscriptionRef.make<ReadonlyArray<ConferenceParticipantMedia>>([])
    const state = yield* SubscriptionRef.make<ConferenceMediaState>({ connection: "new" })
    const remote = new Map<MediaStreamTrack, RemoteTrack>()
    const streams = new Map<number, MediaStream>()
    let ownSlot: number | undefined

    /** The participants from the tracks that are present and attributed, each slot keeping its stream. */
    const publish = () => {
      const bySlot = new Map<number, Array<MediaStreamTrack>>()
      for (const r of remote.values()) {
        if (r.present && r.slot !== undefined) bySlot.set(r.slot, [...(bySlot.get(r.slot) ?? []), r.track])
      }
      for (const slot of streams.keys()) if (!bySlot.has(slot)) streams.delete(slot)
      for (const [slot, tracks] of bySlot) {
        const stream = streams.get(slot) ?? new MediaStream()
        streams.set(slot, stream)
        for (const track of stream.getTracks()) if (!tracks.includes(track)) stream.removeTrack(track)
        for (const track of tracks) if (!stream.getTracks().includes(track)) stream.addTrack(track)
      }
      const next = [...streams].sort(([a], [b]) => a - b).map(([slot, stream]) => ({ slot, stream }))
      Effect.runSync(SubscriptionRef.set(participants, next))
    }

    /** A frame of `keyId` opened on this track: the first one names the track's slot, the rest must match it. */
    const attribute = (r: RemoteTrack) => (keyId: bigint): boolean => {
      const { slot } = keyIdParts(keyId)
      if (slot === ownSlot) return false
      if (r.slot === undefined) {
        r.slot = slot
        if (r.present) publish()
      }
      return r.slot === slot
    }

    const guard: FrameGuard = {
      protectSender: (sender, kind) => protectSender(sender, kind, keys.sender, sent[kind]),
      protectReceiver: (receiver, kind) => {
        const r: RemoteTrack = { track: receiver.track, receiver, counts: frameCounts(), slot: undefined, present: false }
        protectReceiver(receiver, kind, opener, r.counts[kind], attribute(r))
        remote.set(receiver.track, r)
      }
    }
    // Only tracks whose receivers were protected here are shown.
    const handedOver: PathContext["remoteStream"] = {
      addTrack: (track) => {
        const r = remote.get(track)
        if (!r) return
        r.present = true
        publish()
      },
      removeTrack: (track) => {
        const r = remote.get(track)
        if (!r || !r.present) return
        r.present = false
        publish()
      }
    }

    const ended = yield* Deferred.make<ConferenceMediaEnd>()
    const end = (reason: ConferenceMediaEnd) => Effect.asVoid(Deferred.succeed(ended, reason))
    const relayScope = yield* Scope.make()
    let relay: RelayPath | undefined
    let retired = noFigures()
    let joins = { joins: 0, restarts: 0 }

    /** Stops the media for good, once: the relay left, the tracks stopped; run outside the relay's own fibers. */
    const stop = (reason: ConferenceMediaEnd) =>
      Effect.gen(function*() {
        const current = yield* SubscriptionRef.get(state)
        if (current.failure) return
        yield* SubscriptionRef.set(state, { connection: "closed", failure: reason })
        if (relay) {
          retired = yield* relay.figures
          joins = relay.joins()
          relay = undefined
        }
        yield* Scope.close(relayScope, Exit.void)
        for (const track of local.stream.getTracks()) track.stop()
        for (const r of remote.values()) r.present = false
        publish()
      })
    yield* Effect.addFinalizer(() => Effect.uninterruptible(stop("closed")))
    yield* Deferred.await(ended).pipe(Effect.flatMap((reason) => Effect.uninterruptible(stop(reason))), Effect.forkScoped)

    // The slot of this device's own frames; the end of its keys is the end of its media.
    yield* keys.keyChanges.pipe(
      Stream.runForEach((key) =>
        Option.match(key, {
          onSome: (k) => Effect.sync(() => void (ownSlot = k.slot)),
          onNone: () => (ownSlot === undefined ? Effect.void : end("left"))
        })
      ),
      Effect.forkScoped
    )
    if (options.left) yield* Effect.forkScoped(Effect.zipRight(options.left, end("left")))

    relay = yield* startRelay({
      guard,
      localStream: local.stream,
      remoteStream: handedOver,
      events: {
        connection: (connection) =>
          Effect.runSync(SubscriptionRef.update(state, (s) => (s.failure ? s : { connection }))),
        failed: end
      },
      relay: { callId: conferenceId as CallId, device }
    }).pipe(Scope.extend(relayScope))

    const awaitConnected: Effect.Effect<void, MediaConnectionFailed> = state.changes.pipe(
      Stream.filter((s) => s.connection === "connected" || s.failure !== undefined),
      Stream.runHead,
      Effect.flatMap((s) => {
        if (s._tag === "Some" && s.value.failure === undefined) return Effect.void
        const failure = s._tag === "Some" ? s.value.failure : undefined
        return Effect.fail(new MediaConnectionFailed({ reason: failure === undefined || failure === "left" ? "closed" : failure }))
      })
    )

    const switchCamera = (constraints: MediaTrackConstraints = {}) =>
      local.switchCamera((track) => (relay ? relay.replaceTrack("video", track) : Effect.void), constraints)

    const participantStats = Effect.promise(async () => {
      const bySlot = new Map<number, ReadonlyArray<RemoteTrack>>()
      for (const r of remote.values()) {
        if (r.present && r.slot !== undefined) bySlot.set(r.slot, [...(bySlot.get(r.slot) ?? []), r])
      }
      const entries = await Promise.all([...bySlot].map(async ([slot, tracks]): Promise<ConferenceParticipantStats> => {
        const reports = await Promise.all(tracks.map((r) => r.receiver.getStats().catch(() => undefined)))
        const figures = rtpFigures(reports.filter((report): report is RTCStatsReport => report !== undefined))
        let counts = frameCounts()
        for (const r of tracks) counts = addCounts(counts, r.counts)
        return { slot, audio: figures.audio, video: figures.video, received: counts }
      }))
      return entries.sort((a, b) => a.slot - b.slot)
    })

    const stats = Effect.gen(function*() {
      const figures = relay ? addFigures(retired, yield* relay.figures) : retired
      const now = yield* SubscriptionRef.get(state)
      const key = yield* keys.current
      // Every receiver's, those of tracks that are gone included.
      let received = frameCounts()
      for (const r of remote.values()) received = addCounts(received, r.counts)
      const { joins: relayJoins, restarts: relayRestarts } = relay?.joins() ?? joins
      return {
        sframeSuite: keys.sender.suite,
        ...Option.match(key, { onNone: () => ({}), onSome: (k) => ({ epoch: k.epoch, slot: k.slot }) }),
        connectionState: now.connection,
        relayJoins,
        relayRestarts,
        muted: { ...local.muted },
        audio: figures.audio,
        video: figures.video,
        sent: copyCounts(sent),
        received,
        participants: yield* participantStats
      } satisfies ConferenceMediaStats
    })

    return {
      sframeSuite: keys.sender.suite,
      localStream: local.stream,
      participants,
      state,
      awaitConnected,
      setMuted: local.setMuted,
      switchCamera,
      stats
    } satisfies ConferenceMedia
  })
