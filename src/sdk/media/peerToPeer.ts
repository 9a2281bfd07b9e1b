/**
 * The peer-to-peer path of a call's media: one RTCPeerConnection between the two devices (created with encoded
 * insertable streams, so that every transceiver goes behind SFrame before any of its media can flow), offers,
 * answers and ICE candidates over the call's ordered media channel.
 *
 * The caller makes every offer (the initial one and each ICE restart) so the two sides never negotiate at once.
 * Closing the path's scope closes the connection and takes the peer's tracks out of the remote stream; the local
 * tracks and the SFrame contexts belong to CallMedia.
 */
import { Effect, Queue, type Scope } from "effect"
import type { Role } from "../../crypto/session.js"
import { MediaConnectionFailed } from "./errors.js"
import type { MediaKind } from "./frameProtection.js"
import { type MediaPath, onNetworkChange, type PathContext } from "./path.js"
import type { MediaSignal } from "./signalling.js"
import { noFigures, rtpFigures } from "./stats.js"

/** The messages of the peer-to-peer negotiation. */
export type PeerSignal = Exclude<MediaSignal, { readonly _tag: "MediaUseRelay" | "MediaFailed" }>

export interface PeerToPeerOptions extends PathContext {
  readonly role: Role
  /** Where this side's messages go, in order. */
  readonly outbox: Queue.Enqueue<MediaSignal>
  /** The peer's messages, in order. */
  readonly inbox: Queue.Dequeue<PeerSignal>
  /** A message this side must not get (an offer at the caller, an answer at the callee, ...). */
  readonly rejected: () => void
  readonly iceServers?: ReadonlyArray<RTCIceServer>
  readonly iceTransportPolicy?: RTCIceTransportPolicy
}

export interface PeerToPeerPath extends MediaPath {
  readonly mode: "p2p"
  /** New ICE candidates, e.g. after the network changed. The callee asks the caller to do it. */
  readonly restartIce: Effect.Effect<void>
  readonly negotiations: () => { readonly negotiations: number; readonly iceRestarts: number }
}

const isKind = (kind: string): kind is MediaKind => kind === "audio" || kind === "video"

const iceUfrag = (sdp: string | undefined): string | undefined => /^a=ice-ufrag:(\S+)/m.exec(sdp ?? "")?.[1]

/** VP8 first: its frame header is what frameProtection.ts keeps readable. */
const preferVp8 = (transceiver: RTCRtpTransceiver): void => {
  const codecs = globalThis.RTCRtpReceiver.getCapabilities("video")?.codecs ?? []
  const vp8 = codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType))
  if (vp8.some((c) => c.mimeType.toLowerCase() === "video/vp8")) transceiver.setCodecPreferences(vp8)
}

type Command =
  | { readonly _tag: "Remote"; readonly message: PeerSignal }
  | { readonly _tag: "Offer"; readonly iceRestart: boolean }

/**
 * Starts the peer-to-peer path as `role`: the caller sends its offer right away, the callee waits for it. Fails
 * with "frame-protection" when a transceiver cannot be put behind SFrame (nothing is sent then).
 */
export const startPeerToPeer = (options: PeerToPeerOptions): Effect.Effect<PeerToPeerPath, MediaConnectionFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const { role, guard, localStream, remoteStream, events, outbox } = options
    const pc = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new RTCPeerConnection({
          iceServers: [...(options.iceServers ?? [])],
          iceTransportPolicy: options.iceTransportPolicy ?? "all",
          bundlePolicy: "max-bundle",
          encodedInsertableStreams: true
        } as RTCConfiguration)
      ),
      (pc) =>
        Effect.sync(() => {
          pc.onconnectionstatechange = null
          pc.close()
          for (const receiver of pc.getReceivers()) remoteStream.removeTrack(receiver.track)
        })
    )
    const commands = yield* Queue.unbounded<Command>()
    const protectedTransceivers = new WeakSet<RTCRtpTransceiver>()
    let iceRestarts = 0
    let negotiations = 0
    let remoteUfrag: string | undefined
    let pendingCandidates: Array<RTCIceCandidateInit> = []
    let restartWanted = false

    // An ICE restart when the network changes (back online, another interface) or the connection drops after it
    // was up: the caller renegotiates, the callee asks the caller to.
    const requestIceRestart = () => {
      if (pc.signalingState === "closed") return
      if (role === "caller") Queue.unsafeOffer(commands, { _tag: "Offer", iceRestart: true })
      else Queue.unsafeOffer(outbox, { _tag: "MediaIceRestartRequested" })
    }
    let wasConnected = false
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState
      if (state === "connected") wasConnected = true
      else if (wasConnected && (state === "disconnected" || state === "failed")) requestIceRestart()
      events.connection(state)
    }
    yield* onNetworkChange(requestIceRestart)
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
      guard.protectSender(transceiver.sender, kind)
      guard.protectReceiver(transceiver.receiver, kind)
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

    const rejected = Effect.sync(options.rejected)

    const handle = (command: Command): Effect.Effect<void, MediaConnectionFailed> => {
      if (command._tag === "Offer") return offer(command.iceRestart)
      const message = command.message
      switch (message._tag) {
        case "MediaOffer":
          return role === "callee" ? answer(message.sdp) : rejected
        case "MediaAnswer":
          if (role !== "caller" || pc.signalingState !== "have-local-offer") return rejected
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
          return role === "caller" ? offer(true) : rejected
      }
    }

    yield* Queue.take(options.inbox).pipe(
      Effect.flatMap((message) => Queue.offer(commands, { _tag: "Remote", message })),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Queue.take(commands).pipe(
      Effect.flatMap(handle),
      Effect.forever,
      Effect.catchAll((e) => events.failed(e.reason)),
      Effect.forkScoped
    )

    if (role === "caller") {
      for (const track of localStream.getTracks()) {
        if (!isKind(track.kind)) continue
        const kind = track.kind
        const transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [localStream] })
        yield* protection(() => protect(transceiver, kind))
        if (kind === "video") preferVp8(transceiver)
      }
      yield* Queue.offer(commands, { _tag: "Offer", iceRestart: false })
    }

    const replaceTrack = (kind: MediaKind, track: MediaStreamTrack) =>
      Effect.suspend(() => {
        const sender = pc.getTransceivers().find((t) => t.sender.track?.kind === kind || t.receiver.track.kind === kind)?.sender
        return sender ? Effect.tryPromise(() => sender.replaceTrack(track)) : Effect.void
      })

    return {
      mode: "p2p",
      replaceTrack,
      restartIce: role === "caller"
        ? Queue.offer(commands, { _tag: "Offer", iceRestart: true }).pipe(Effect.asVoid)
        : Queue.offer(outbox, { _tag: "MediaIceRestartRequested" }).pipe(Effect.asVoid),
      negotiations: () => ({ negotiations, iceRestarts }),
      // A closed connection has no figures left to give; CallMedia keeps those it read before closing it.
      figures: Effect.tryPromise(() => pc.getStats()).pipe(
        Effect.map((report) => rtpFigures([report])),
        Effect.orElseSucceed(noFigures)
      )
    } satisfies PeerToPeerPath
  })
