/**
 * A call's media in the browser, peer to peer: one RTCPeerConnection with the local camera and microphone, every
 * sender and every receiver behind SFrame under the call's keys (frameProtection.ts), offers, answers and ICE
 * candidates over a pluggable, ordered channel (signalling.ts), normally the call's sealed channel.
 *
 * Fail closed: support is checked before anything is captured or sent; a sender or receiver that cannot be put
 * behind SFrame stops the media; a frame that does not decrypt is dropped. The caller makes every offer (the
 * initial one and each ICE restart) so the two sides never negotiate at once. Mute and camera switch change tracks
 * only (track.enabled, replaceTrack): no renegotiation. Closing the scope closes the connection, stops the
 * tracks and destroys the SFrame contexts.
 */
import { Effect, Queue, type Scope, Stream, SubscriptionRef } from "effect"
import type { KeysDestroyed } from "../../crypto/errors.js"
import type { Role } from "../../crypto/session.js"
import type { SFrameCipherSuiteId, SFrameReceiver, SFrameReceiverOptions, SFrameSender } from "../../crypto/sframe.js"
import { EncodedTransformUnsupported, MediaCaptureFailed, MediaConnectionFailed, type MediaFailureReason } from "./errors.js"
import { type FrameCounts, type MediaKind, protectReceiver, protectSender } from "./frameProtection.js"
import { decodeMediaSignal, type MediaSignal, type MediaSignalChannel } from "./signalling.js"
import { type CallMediaStats, rtpFigures } from "./stats.js"
import { requireEncodedTransform } from "./support.js"

/** SFrame contexts under the call's keys: SecureCall's `media`, or `mediaKeysOf` for a bare CallSession. */
export interface MediaKeys {
  readonly suite: SFrameCipherSuiteId
  readonly createSender: Effect.Effect<SFrameSender, KeysDestroyed>
  readonly createReceiver: (options?: Omit<SFrameReceiverOptions, "suite">) => Effect.Effect<SFrameReceiver, KeysDestroyed>
}

export interface CallMediaOptions<SendError, ReceiveError> {
  /** As in the handshake: the caller makes the offers, the callee answers. */
  readonly role: Role
  readonly keys: MediaKeys
  readonly signalling: MediaSignalChannel<SendError, ReceiveError>
  readonly iceServers?: ReadonlyArray<RTCIceServer>
  /** What to capture; camera and microphone unless given. */
  readonly constraints?: MediaStreamConstraints
}

export interface CallMediaState {
  readonly connection: RTCPeerConnectionState
  /** Set once the media has failed for good. */
  readonly failure?: MediaFailureReason
}

export interface CallMedia {
  readonly mode: "p2p"
  readonly role: Role
  readonly sframeSuite: SFrameCipherSuiteId
  /** The captured tracks (for a self view); the camera track changes on switchCamera. */
  readonly localStream: MediaStream
  /** The peer's tracks, decrypted, as they arrive. */
  readonly remoteStream: MediaStream
  readonly state: SubscriptionRef.SubscriptionRef<CallMediaState>
  /** Completes once the peers are connected; fails if the connection fails or the media ends first. */
  readonly awaitConnected: Effect.Effect<void, MediaConnectionFailed>
  /** Mutes or unmutes this side's microphone or camera (the peer gets silence or black frames). */
  readonly setMuted: (kind: MediaKind, muted: boolean) => Effect.Effect<void>
  /** Opens another camera (e.g. `{ facingMode: "environment" }` or `{ deviceId: { exact } }`) and sends it instead. */
  readonly switchCamera: (constraints?: MediaTrackConstraints) => Effect.Effect<void, MediaCaptureFailed>
  /** New ICE candidates, e.g. after the network changed. The callee asks the caller to do it. */
  readonly restartIce: Effect.Effect<void>
  readonly stats: Effect.Effect<CallMediaStats>
}

/** A replay window wide enough for audio and video frames of one sender, which share a counter but not a path. */
const REPLAY_WINDOW = 1024

const counts = (): Record<MediaKind, FrameCounts> => ({
  audio: { protected: 0, dropped: 0, replayed: 0 },
  video: { protected: 0, dropped: 0, replayed: 0 }
})

const isKind = (kind: string): kind is MediaKind => kind === "audio" || kind === "video"

const iceUfrag = (sdp: string | undefined): string | undefined => /^a=ice-ufrag:(\S+)/m.exec(sdp ?? "")?.[1]

const capture = (constraints: MediaStreamConstraints) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => navigator.mediaDevices.getUserMedia(constraints),
      catch: (e) => new MediaCaptureFailed({ reason: e instanceof Error ? e.name : "unknown" })
    }),
    (stream) => Effect.sync(() => stream.getTracks().forEach((track) => track.stop()))
  )

/** VP8 first: its frame header is what frameProtection.ts keeps readable. */
const preferVp8 = (transceiver: RTCRtpTransceiver): void => {
  const codecs = globalThis.RTCRtpReceiver.getCapabilities("video")?.codecs ?? []
  const vp8 = codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType))
  if (vp8.some((c) => c.mimeType.toLowerCase() === "video/vp8")) transceiver.setCodecPreferences(vp8)
}

type Command =
  | { readonly _tag: "Remote"; readonly message: MediaSignal }
  | { readonly _tag: "Offer"; readonly iceRestart: boolean }

/**
 * Starts the call's media as `role`: refuses with EncodedTransformUnsupported before capturing anything when
 * frames cannot be encrypted; the caller sends its offer right away, the callee waits for it.
 */
export const startCallMedia = <SendError, ReceiveError>(
  options: CallMediaOptions<SendError, ReceiveError>
): Effect.Effect<CallMedia, EncodedTransformUnsupported | MediaCaptureFailed | KeysDestroyed, Scope.Scope> =>
  Effect.gen(function*() {
    yield* requireEncodedTransform
    const { role, keys, signalling } = options
    const sframeSender = yield* Effect.acquireRelease(keys.createSender, (s) => Effect.sync(() => s.destroy()))
    const sframeReceiver = yield* Effect.acquireRelease(
      keys.createReceiver({ replayWindow: REPLAY_WINDOW }),
      (r) => Effect.sync(() => r.destroy())
    )
    const localStream = yield* capture(options.constraints ?? { audio: true, video: true })
    const remoteStream = new MediaStream()
    const pc = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new RTCPeerConnection({
          iceServers: [...(options.iceServers ?? [])],
          bundlePolicy: "max-bundle",
          encodedInsertableStreams: true
        } as RTCConfiguration)
      ),
      (pc) => Effect.sync(() => pc.close())
    )
    const state = yield* SubscriptionRef.make<CallMediaState>({ connection: pc.connectionState })
    const outbox = yield* Queue.unbounded<MediaSignal>()
    const inbox = yield* Queue.unbounded<Command>()
    const sent = counts()
    const received = counts()
    const signals = { sent: 0, received: 0, rejected: 0 }
    const muted: Record<MediaKind, boolean> = { audio: false, video: false }
    const protectedTransceivers = new WeakSet<RTCRtpTransceiver>()
    let iceRestarts = 0
    let negotiations = 0
    let remoteUfrag: string | undefined
    let pendingCandidates: Array<RTCIceCandidateInit> = []
    let restartWanted = false

    const fail = (reason: MediaFailureReason) =>
      SubscriptionRef.update(state, (s) => (s.failure ? s : { connection: "closed" as const, failure: reason })).pipe(
        Effect.zipRight(Effect.sync(() => pc.close()))
      )
    yield* Effect.addFinalizer(() => fail("closed"))

    pc.onconnectionstatechange = () => {
      const connection = pc.connectionState
      Effect.runSync(SubscriptionRef.update(state, (s): CallMediaState =>
        s.failure ? s : connection === "failed" ? { connection, failure: "ice-failed" } : { connection }))
    }
    pc.onicecandidate = (event) => {
      const c = event.candidate
      if (!c || !c.candidate) return
      Queue.unsafeOffer(outbox, {
        _tag: "MediaIceCandidate",
        candidate: c.candidate,
        sdpMid: c.sdpMid ?? null,
        sdpMLineIndex: c.sdpMLineIndex ?? null,
        usernameFragment: c.usernameFragment ?? null
      })
    }
    pc.ontrack = (event) => remoteStream.addTrack(event.track)

    const localTrack = (kind: MediaKind) => localStream.getTracks().find((t) => t.kind === kind)

    /** SFrame on both ends of a transceiver, before any of its media can flow; throws when the browser refuses. */
    const protect = (transceiver: RTCRtpTransceiver, kind: MediaKind) => {
      if (protectedTransceivers.has(transceiver)) return
      protectSender(transceiver.sender, kind, sframeSender, sent[kind])
      protectReceiver(transceiver.receiver, kind, sframeReceiver, received[kind])
      protectedTransceivers.add(transceiver)
    }

    const negotiation = <A>(run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: () => new MediaConnectionFailed({ reason: "negotiation" }) })
    const protection = (run: () => void) =>
      Effect.try({ try: run, catch: () => new MediaConnectionFailed({ reason: "frame-protection" }) })

    const remoteDescriptionSet = (sdp: string) =>
      Effect.gen(function*() {
        const ufrag = iceUfrag(sdp)
        if (remoteUfrag !== undefined && ufrag !== remoteUfrag) iceRestarts++
        remoteUfrag = ufrag
        const candidates = pendingCandidates
        pendingCandidates = []
        for (const candidate of candidates) yield* Effect.ignore(negotiation(() => pc.addIceCandidate(candidate)))
      })

    const offer = (iceRestart: boolean) =>
      Effect.gen(function*() {
        if (pc.signalingState !== "stable") {
          restartWanted ||= iceRestart
          return
        }
        const description = yield* negotiation(() => pc.createOffer({ iceRestart }))
        // Queued before it is applied, so the candidates it produces follow it on the channel.
        yield* Queue.offer(outbox, { _tag: "MediaOffer", sdp: description.sdp ?? "" })
        yield* negotiation(() => pc.setLocalDescription(description))
        negotiations++
      })

    const answer = (sdp: string) =>
      Effect.gen(function*() {
        yield* negotiation(() => pc.setRemoteDescription({ type: "offer", sdp }))
        for (const transceiver of pc.getTransceivers()) {
          const kind = transceiver.receiver.track.kind
          if (!isKind(kind) || protectedTransceivers.has(transceiver)) continue
          yield* protection(() => protect(transceiver, kind))
          if (kind === "video") preferVp8(transceiver)
          const track = localTrack(kind)
          if (track) {
            yield* negotiation(() => transceiver.sender.replaceTrack(track))
            transceiver.sender.setStreams(localStream)
            transceiver.direction = "sendrecv"
          }
        }
        yield* remoteDescriptionSet(sdp)
        const description = yield* negotiation(() => pc.createAnswer())
        yield* Queue.offer(outbox, { _tag: "MediaAnswer", sdp: description.sdp ?? "" })
        yield* negotiation(() => pc.setLocalDescription(description))
        negotiations++
      })

    const handle = (command: Command): Effect.Effect<void, MediaConnectionFailed> => {
      if (command._tag === "Offer") return offer(command.iceRestart)
      const message = command.message
      switch (message._tag) {
        case "MediaOffer":
          return role === "callee" ? answer(message.sdp) : Effect.sync(() => void signals.rejected++)
        case "MediaAnswer":
          if (role !== "caller" || pc.signalingState !== "have-local-offer") return Effect.sync(() => void signals.rejected++)
          return negotiation(() => pc.setRemoteDescription({ type: "answer", sdp: message.sdp })).pipe(
            Effect.zipRight(remoteDescriptionSet(message.sdp)),
            Effect.zipRight(Effect.suspend(() => {
              if (!restartWanted) return Effect.void
              restartWanted = false
              return offer(true)
            }))
          )
        case "MediaIceCandidate": {
          const { _tag, ...candidate } = message
          if (!pc.remoteDescription) return Effect.sync(() => void pendingCandidates.push(candidate))
          // A candidate of an ICE generation that has just been replaced is refused by the browser: harmless.
          return Effect.ignore(negotiation(() => pc.addIceCandidate(candidate)))
        }
        case "MediaIceRestartRequested":
          return role === "caller" ? offer(true) : Effect.sync(() => void signals.rejected++)
      }
    }

    yield* Queue.take(inbox).pipe(
      Effect.flatMap(handle),
      Effect.forever,
      Effect.catchAll((e) => fail(e.reason)),
      Effect.forkScoped
    )
    yield* signalling.receive.pipe(
      Effect.flatMap((raw) =>
        decodeMediaSignal(raw).pipe(
          Effect.flatMap((message) => Effect.zipRight(Effect.sync(() => signals.received++), Queue.offer(inbox, { _tag: "Remote", message }))),
          Effect.catchTag("NoSuchElementException", () => Effect.sync(() => void signals.rejected++))
        )
      ),
      Effect.forever,
      Effect.catchAll(() => fail("signalling")),
      Effect.forkScoped
    )
    yield* Queue.take(outbox).pipe(
      Effect.flatMap((message) => Effect.zipRight(signalling.send(message), Effect.sync(() => signals.sent++))),
      Effect.forever,
      Effect.catchAll(() => fail("signalling")),
      Effect.forkScoped
    )

    if (role === "caller") {
      for (const track of localStream.getTracks()) {
        if (!isKind(track.kind)) continue
        const kind = track.kind
        const transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [localStream] })
        yield* protection(() => protect(transceiver, kind)).pipe(
          Effect.tapError(() => fail("frame-protection")),
          Effect.mapError(() => new EncodedTransformUnsupported())
        )
        if (kind === "video") preferVp8(transceiver)
      }
      yield* Queue.offer(inbox, { _tag: "Offer", iceRestart: false })
    }

    const awaitConnected: Effect.Effect<void, MediaConnectionFailed> = state.changes.pipe(
      Stream.filter((s) => s.connection === "connected" || s.failure !== undefined),
      Stream.runHead,
      Effect.flatMap((s) =>
        s._tag === "Some" && s.value.failure === undefined
          ? Effect.void
          : Effect.fail(new MediaConnectionFailed({ reason: s._tag === "Some" ? s.value.failure ?? "closed" : "closed" }))
      )
    )

    const setMuted = (kind: MediaKind, mute: boolean) =>
      Effect.sync(() => {
        muted[kind] = mute
        for (const track of localStream.getTracks()) if (track.kind === kind) track.enabled = !mute
      })

    const switchCamera = (constraints: MediaTrackConstraints = {}) =>
      Effect.gen(function*() {
        const next = yield* Effect.tryPromise({
          try: () => navigator.mediaDevices.getUserMedia({ video: constraints }),
          catch: (e) => new MediaCaptureFailed({ reason: e instanceof Error ? e.name : "unknown" })
        })
        const track = next.getVideoTracks()[0]
        if (!track) return yield* new MediaCaptureFailed({ reason: "NotFoundError" })
        track.enabled = !muted.video
        const sender = pc.getTransceivers().find((t) => t.sender.track?.kind === "video" || t.receiver.track.kind === "video")?.sender
        if (sender) {
          yield* Effect.tryPromise({
            try: () => sender.replaceTrack(track),
            catch: () => new MediaCaptureFailed({ reason: "InvalidStateError" })
          }).pipe(Effect.tapError(() => Effect.sync(() => track.stop())))
        }
        const previous = localStream.getVideoTracks()
        localStream.addTrack(track)
        for (const old of previous) {
          localStream.removeTrack(old)
          old.stop()
        }
      })

    const restartIce = role === "caller"
      ? Queue.offer(inbox, { _tag: "Offer", iceRestart: true }).pipe(Effect.asVoid)
      : Queue.offer(outbox, { _tag: "MediaIceRestartRequested" }).pipe(Effect.asVoid)

    const stats = Effect.gen(function*() {
      const report = yield* Effect.promise(() => pc.getStats())
      const figures = rtpFigures(report)
      const copy = (c: Record<MediaKind, FrameCounts>) => ({ audio: { ...c.audio }, video: { ...c.video } })
      return {
        mode: "p2p",
        sframeSuite: keys.suite,
        connectionState: (yield* SubscriptionRef.get(state)).connection,
        negotiations,
        iceRestarts,
        muted: { ...muted },
        audio: figures.audio,
        video: figures.video,
        sent: copy(sent),
        received: copy(received),
        signals: { ...signals }
      } satisfies CallMediaStats
    })

    return {
      mode: "p2p",
      role,
      sframeSuite: keys.suite,
      localStream,
      remoteStream,
      state,
      awaitConnected,
      setMuted,
      switchCamera,
      restartIce,
      stats
    } satisfies CallMedia
  })
