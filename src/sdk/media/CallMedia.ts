/**
 * A call's media in the browser: the local camera and microphone to the peer and the peer's back, every sender and
 * every receiver behind SFrame under the call's keys (frameProtection.ts), on one of two paths:
 *   - peer to peer (peerToPeer.ts): one RTCPeerConnection, offers, answers and candidates over the call's ordered
 *     media channel (signalling.ts), normally the call's sealed channel;
 *   - the server's relay (relay.ts): mediasoup transports through the relay RPCs, which forward ciphertext only.
 * The policy says which: "p2p" only, "relay" only, or "auto": peer to peer first, and the relay when ICE has not
 * connected within a bound (5 s unless given) or fails. The side that gives up on peer to peer says MediaUseRelay
 * over the media channel and the other follows, so both end up on the relay without anyone doing anything.
 *
 * Fail closed: support is checked before anything is captured or sent; a sender or receiver that cannot be put
 * behind SFrame stops the media; a frame that does not decrypt is dropped. Media that fail for good (or a refusal
 * before they start) are told to the peer over the media channel (MediaFailed), and the peer's media end too
 * ("peer-failed", with the peer's reason), so neither side waits for frames that will not come. Mute and camera switch change tracks
 * only (track.enabled, replaceTrack): no renegotiation. Closing the scope closes the paths (leaving the relay),
 * stops the tracks and destroys the SFrame contexts.
 */
import { type Duration, Effect, ExecutionStrategy, Exit, Queue, Scope, Stream, SubscriptionRef } from "effect"
import type { KeysDestroyed } from "../../crypto/errors.js"
import type { Role } from "../../crypto/session.js"
import type { SFrameCipherSuiteId, SFrameReceiver, SFrameReceiverOptions, SFrameSender } from "../../crypto/sframe.js"
import { EncodedTransformUnsupported, type MediaCaptureFailed, MediaConnectionFailed, type MediaFailureReason } from "./errors.js"
import { type FrameCounts, type MediaKind, protectReceiver, protectSender } from "./frameProtection.js"
import { captureLocalMedia, frameCounts } from "./localMedia.js"
import type { FrameGuard, MediaMode, MediaPath, PathContext } from "./path.js"
import { type PeerSignal, type PeerToPeerPath, startPeerToPeer } from "./peerToPeer.js"
import { type RelayAccess, type RelayPath, startRelay } from "./relay.js"
import { decodeMediaSignal, type MediaSignal, type MediaSignalChannel } from "./signalling.js"
import { addFigures, type CallMediaStats, noFigures } from "./stats.js"
import { requireEncodedTransform } from "./support.js"

export type { MediaMode } from "./path.js"
export type { RelayAccess } from "./relay.js"

/** SFrame contexts under the call's keys: SecureCall's `media`, or `mediaKeysOf` for a bare CallSession. */
export interface MediaKeys {
  readonly suite: SFrameCipherSuiteId
  readonly createSender: Effect.Effect<SFrameSender, KeysDestroyed>
  readonly createReceiver: (options?: Omit<SFrameReceiverOptions, "suite">) => Effect.Effect<SFrameReceiver, KeysDestroyed>
}

export type CallMediaPolicy = "auto" | "p2p" | "relay"

interface CommonOptions<SendError, ReceiveError> {
  /** As in the handshake: the caller makes the offers, the callee answers. */
  readonly role: Role
  readonly keys: MediaKeys
  readonly signalling: MediaSignalChannel<SendError, ReceiveError>
  /** Peer to peer: STUN/TURN servers, and "relay" to use TURN only. */
  readonly iceServers?: ReadonlyArray<RTCIceServer>
  readonly iceTransportPolicy?: RTCIceTransportPolicy
  /** What to capture; camera and microphone unless given. */
  readonly constraints?: MediaStreamConstraints
}

/** Peer to peer only (the default without `relay`): an ICE failure ends the media. */
interface PeerToPeerOnly {
  readonly mode?: "p2p"
  readonly relay?: never
}

/** With the call's relay: "auto" (the default) tries peer to peer first; "relay" goes through the server at once. */
interface WithRelay {
  readonly mode?: "auto" | "relay"
  readonly relay: RelayAccess
  /** "auto": how long peer to peer may take to connect before the relay is used; 5 seconds unless given. */
  readonly p2pTimeout?: Duration.DurationInput
}

export type CallMediaOptions<SendError, ReceiveError> = CommonOptions<SendError, ReceiveError> & (PeerToPeerOnly | WithRelay)

export interface CallMediaState {
  /** The path the media take now. */
  readonly mode: MediaMode
  readonly connection: RTCPeerConnectionState
  /** Set once the media has failed for good. */
  readonly failure?: MediaFailureReason
  /** With failure "peer-failed": why the peer's media failed, as it said. */
  readonly peerFailure?: MediaFailureReason
}

export interface CallMedia {
  readonly policy: CallMediaPolicy
  readonly role: Role
  readonly sframeSuite: SFrameCipherSuiteId
  /** The captured tracks (for a self view); the camera track changes on switchCamera. */
  readonly localStream: MediaStream
  /** The peer's tracks, decrypted, as they arrive (on whichever path). */
  readonly remoteStream: MediaStream
  readonly state: SubscriptionRef.SubscriptionRef<CallMediaState>
  /**
   * Completes, with the path, once the media are connected (for "auto" maybe only after the fall back to the
   * relay); fails if the media end first.
   */
  readonly awaitConnected: Effect.Effect<MediaMode, MediaConnectionFailed>
  /** Mutes or unmutes this side's microphone or camera (the peer gets silence or black frames). */
  readonly setMuted: (kind: MediaKind, muted: boolean) => Effect.Effect<void>
  /** Opens another camera (e.g. `{ facingMode: "environment" }` or `{ deviceId: { exact } }`) and sends it instead. */
  readonly switchCamera: (constraints?: MediaTrackConstraints) => Effect.Effect<void, MediaCaptureFailed>
  /**
   * New ICE candidates, e.g. after the network changed. Peer to peer: the callee asks the caller. Relay: fresh ICE
   * credentials from the relay for both transports. Both paths also do it on their own when the network changes.
   */
  readonly restartIce: Effect.Effect<void>
  readonly stats: Effect.Effect<CallMediaStats>
}

/** A replay window wide enough for audio and video frames of one sender, which share a counter but not a path. */
const REPLAY_WINDOW = 1024
const DEFAULT_P2P_TIMEOUT: Duration.DurationInput = "5 seconds"

type FallbackReason = NonNullable<CallMediaStats["fellBackBecause"]>

/** What the media's controller acts on, one at a time. */
type Control =
  | { readonly _tag: "PathFailed"; readonly mode: MediaMode; readonly reason: MediaFailureReason }
  | { readonly _tag: "UseRelay"; readonly because: FallbackReason }
  | { readonly _tag: "PeerFailed"; readonly reason: MediaFailureReason }

/** Failures the peer is told of: its own are not sent back, and a broken channel or a close carries nothing. */
const toldToPeer = (reason: MediaFailureReason): boolean => reason !== "closed" && reason !== "signalling" && reason !== "peer-failed"

/** How long a refusal before the media started may take to reach the peer before startCallMedia fails anyway. */
const REFUSAL_NOTICE_TIMEOUT = "2 seconds"

/**
 * Starts the call's media as `role`: refuses with EncodedTransformUnsupported before capturing anything when
 * frames cannot be encrypted (and tells the peer so); then peer to peer (the caller sends its offer right away, the callee waits for it)
 * or the relay, as the policy says.
 */
export const startCallMedia = <SendError, ReceiveError>(
  options: CallMediaOptions<SendError, ReceiveError>
): Effect.Effect<CallMedia, EncodedTransformUnsupported | MediaCaptureFailed | KeysDestroyed, Scope.Scope> =>
  Effect.gen(function*() {
    const { role, keys, signalling } = options
    yield* requireEncodedTransform.pipe(
      Effect.tapError(() =>
        Effect.ignore(Effect.timeout(signalling.send({ _tag: "MediaFailed", reason: "frame-protection" }), REFUSAL_NOTICE_TIMEOUT))
      )
    )
    const relay = options.relay
    const policy: CallMediaPolicy = relay ? options.mode ?? "auto" : "p2p"
    const sframeSender = yield* Effect.acquireRelease(keys.createSender, (s) => Effect.sync(() => s.destroy()))
    const sframeReceiver = yield* Effect.acquireRelease(
      keys.createReceiver({ replayWindow: REPLAY_WINDOW }),
      (r) => Effect.sync(() => r.destroy())
    )
    const local = yield* captureLocalMedia(options.constraints ?? { audio: true, video: true })
    const { stream: localStream, muted } = local
    const remoteStream = new MediaStream()
    const sent = frameCounts()
    const received = frameCounts()
    const signals = { sent: 0, received: 0, rejected: 0 }
    const guard: FrameGuard = {
      protectSender: (sender, kind) => protectSender(sender, kind, sframeSender, sent[kind]),
      protectReceiver: (receiver, kind) => protectReceiver(receiver, kind, sframeReceiver, received[kind])
    }

    const scope = yield* Effect.scope
    const state = yield* SubscriptionRef.make<CallMediaState>({ mode: policy === "relay" ? "relay" : "p2p", connection: "new" })
    const outbox = yield* Queue.unbounded<MediaSignal>()
    const control = yield* Queue.unbounded<Control>()
    let p2p: { readonly path: PeerToPeerPath; readonly scope: Scope.CloseableScope; readonly inbox: Queue.Queue<PeerSignal> } | undefined
    let relayed: { readonly path: RelayPath; readonly scope: Scope.CloseableScope } | undefined
    let active: MediaPath | undefined
    let retired = noFigures()
    let fellBackBecause: FallbackReason | undefined
    let p2pConnected = false

    const eventsOf = (mode: MediaMode): PathContext["events"] => ({
      connection: (connection) => {
        if (mode === "p2p" && connection === "connected") p2pConnected = true
        if (mode === "p2p" && connection === "failed") {
          Queue.unsafeOffer(control, { _tag: "PathFailed", mode, reason: "ice-failed" })
          return
        }
        Effect.runSync(SubscriptionRef.update(state, (s) => (s.failure || s.mode !== mode ? s : { ...s, connection })))
      },
      failed: (reason) => Queue.offer(control, { _tag: "PathFailed", mode, reason }).pipe(Effect.asVoid)
    })
    const context = (mode: MediaMode): PathContext => ({ guard, localStream, remoteStream, events: eventsOf(mode) })

    /** Closes a path, keeping its figures; run by the controller only, never by the path's own fibers. */
    const closePath = (path: MediaPath, pathScope: Scope.CloseableScope) =>
      Effect.gen(function*() {
        retired = addFigures(retired, yield* path.figures)
        if (active === path) active = undefined
        yield* Scope.close(pathScope, Exit.void)
      })

    const closePaths = Effect.gen(function*() {
      if (p2p) yield* closePath(p2p.path, p2p.scope)
      if (relayed) yield* closePath(relayed.path, relayed.scope)
    })

    const finish = (reason: MediaFailureReason, peerFailure?: MediaFailureReason) =>
      Effect.gen(function*() {
        const current = yield* SubscriptionRef.get(state)
        if (current.failure) return
        yield* SubscriptionRef.set(state, {
          mode: current.mode,
          connection: "closed",
          failure: reason,
          ...(peerFailure ? { peerFailure } : {})
        })
        if (toldToPeer(reason)) yield* Queue.offer(outbox, { _tag: "MediaFailed", reason })
        yield* closePaths
      })

    const joinRelay = (access: RelayAccess) =>
      Effect.gen(function*() {
        yield* SubscriptionRef.update(state, (s): CallMediaState => (s.failure ? s : { mode: "relay", connection: "new" }))
        const relayScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const path = yield* startRelay({ ...context("relay"), relay: access }).pipe(Scope.extend(relayScope))
        relayed = { path, scope: relayScope }
        active = path
      })

    const switchToRelay = (because: FallbackReason) =>
      Effect.gen(function*() {
        if (relayed || !relay || (yield* SubscriptionRef.get(state)).failure) return
        fellBackBecause = because
        if (because !== "peer") yield* Queue.offer(outbox, { _tag: "MediaUseRelay" })
        if (p2p) yield* closePath(p2p.path, p2p.scope)
        yield* joinRelay(relay)
      })

    const onControl = (command: Control): Effect.Effect<void> => {
      switch (command._tag) {
        case "PathFailed":
          if (active?.mode !== command.mode) return Effect.void
          return policy === "auto" && command.mode === "p2p" && command.reason === "ice-failed"
            ? switchToRelay("ice-failed")
            : finish(command.reason)
        case "UseRelay":
          if (policy === "p2p") return Effect.sync(() => void signals.rejected++)
          return switchToRelay(command.because)
        case "PeerFailed":
          return finish("peer-failed", command.reason)
      }
    }
    yield* Effect.addFinalizer(() => finish("closed"))
    yield* Queue.take(control).pipe(Effect.flatMap(onControl), Effect.forever, Effect.forkScoped)

    const dispatch = (message: MediaSignal) =>
      Effect.suspend(() => {
        signals.received++
        if (message._tag === "MediaUseRelay") return Queue.offer(control, { _tag: "UseRelay", because: "peer" })
        if (message._tag === "MediaFailed") return Queue.offer(control, { _tag: "PeerFailed", reason: message.reason })
        // Peer-to-peer messages still on their way when the call moved to the relay are of no use any more.
        return p2p && active === p2p.path ? Queue.offer(p2p.inbox, message) : Effect.void
      })
    yield* signalling.receive.pipe(
      Effect.flatMap((raw) =>
        decodeMediaSignal(raw).pipe(
          Effect.flatMap(dispatch),
          Effect.catchTag("NoSuchElementException", () => Effect.sync(() => void signals.rejected++))
        )
      ),
      Effect.forever,
      Effect.catchAll(() => finish("signalling")),
      Effect.forkScoped
    )
    yield* Queue.take(outbox).pipe(
      Effect.flatMap((message) => Effect.zipRight(signalling.send(message), Effect.sync(() => void signals.sent++))),
      Effect.forever,
      Effect.catchAll(() => finish("signalling")),
      Effect.forkScoped
    )

    if (policy === "relay") {
      // A peer on "auto" follows at once instead of waiting for its peer-to-peer attempt to time out.
      yield* Queue.offer(outbox, { _tag: "MediaUseRelay" })
      yield* joinRelay(relay!)
    } else {
      const p2pScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      const inbox = yield* Queue.unbounded<PeerSignal>()
      const path = yield* startPeerToPeer({
        ...context("p2p"),
        role,
        outbox,
        inbox,
        rejected: () => void signals.rejected++,
        ...(options.iceServers ? { iceServers: options.iceServers } : {}),
        ...(options.iceTransportPolicy ? { iceTransportPolicy: options.iceTransportPolicy } : {})
      }).pipe(
        Scope.extend(p2pScope),
        Effect.tapError(() => finish("frame-protection")),
        Effect.mapError(() => new EncodedTransformUnsupported())
      )
      p2p = { path, scope: p2pScope, inbox }
      active = path
      if (policy === "auto") {
        // "auto" comes with the relay options only, so the bound is theirs.
        const bound = (options.relay && options.p2pTimeout) ?? DEFAULT_P2P_TIMEOUT
        yield* Effect.sleep(bound).pipe(
          Effect.zipRight(Effect.suspend(() => (p2pConnected ? Effect.void : Queue.offer(control, { _tag: "UseRelay", because: "timeout" })))),
          Effect.forkIn(p2pScope)
        )
      }
    }

    const awaitConnected: Effect.Effect<MediaMode, MediaConnectionFailed> = state.changes.pipe(
      Stream.filter((s) => s.connection === "connected" || s.failure !== undefined),
      Stream.runHead,
      Effect.flatMap((s) =>
        s._tag === "Some" && s.value.failure === undefined
          ? Effect.succeed(s.value.mode)
          : Effect.fail(
            new MediaConnectionFailed({
              reason: s._tag === "Some" ? s.value.failure ?? "closed" : "closed",
              ...(s._tag === "Some" && s.value.peerFailure ? { peerReason: s.value.peerFailure } : {})
            })
          )
      )
    )

    const setMuted = local.setMuted

    const switchCamera = (constraints: MediaTrackConstraints = {}) =>
      local.switchCamera((track) => (active ? active.replaceTrack("video", track) : Effect.void), constraints)

    const restartIce = Effect.suspend(() => {
      if (p2p && active === p2p.path) return p2p.path.restartIce
      return relayed && active === relayed.path ? relayed.path.restartIce : Effect.void
    })

    const stats = Effect.gen(function*() {
      const figures = active ? addFigures(retired, yield* active.figures) : retired
      const copy = (c: Record<MediaKind, FrameCounts>) => ({ audio: { ...c.audio }, video: { ...c.video } })
      const now = yield* SubscriptionRef.get(state)
      const { negotiations, iceRestarts } = p2p?.path.negotiations() ?? { negotiations: 0, iceRestarts: 0 }
      const { joins, restarts, iceRestarts: relayIceRestarts } = relayed?.path.joins() ?? { joins: 0, restarts: 0, iceRestarts: 0 }
      return {
        mode: now.mode,
        policy,
        ...(fellBackBecause ? { fellBackBecause } : {}),
        sframeSuite: keys.suite,
        connectionState: now.connection,
        negotiations,
        iceRestarts,
        relayJoins: joins,
        relayRestarts: restarts,
        relayIceRestarts,
        muted: { ...muted },
        audio: figures.audio,
        video: figures.video,
        sent: copy(sent),
        received: copy(received),
        signals: { ...signals }
      } satisfies CallMediaStats
    })

    return {
      policy,
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
