/**
 * What a call's and a conference's media share on this side: the captured camera and microphone (stopped when the
 * scope closes), mute (track.enabled: the others get silence or black frames) and the camera switch (the new track
 * is sent instead of the old one by replaceTrack, no renegotiation), and the SFrame frame counters per kind.
 */
import { Effect, type Scope } from "effect"
import { MediaCaptureFailed } from "./errors.js"
import type { FrameCounts, MediaKind } from "./frameProtection.js"

export const frameCounts = (): Record<MediaKind, FrameCounts> => ({
  audio: { protected: 0, dropped: 0, replayed: 0 },
  video: { protected: 0, dropped: 0, replayed: 0 }
})

export const copyCounts = (c: Readonly<Record<MediaKind, FrameCounts>>): Record<MediaKind, FrameCounts> => ({
  audio: { ...c.audio },
  video: { ...c.video }
})

export const addCounts = (a: Readonly<Record<MediaKind, FrameCounts>>, b: Readonly<Record<MediaKind, FrameCounts>>) => {
  const sum = (x: FrameCounts, y: FrameCounts): FrameCounts => ({
    protected: x.protected + y.protected,
    dropped: x.dropped + y.dropped,
    replayed: x.replayed + y.replayed
  })
  return { audio: sum(a.audio, b.audio), video: sum(a.video, b.video) }
}

export interface LocalMedia {
  /** The captured tracks (for a self view); the camera track changes on switchCamera. */
  readonly stream: MediaStream
  /** What is muted now. */
  readonly muted: Readonly<Record<MediaKind, boolean>>
  readonly setMuted: (kind: MediaKind, muted: boolean) => Effect.Effect<void>
  /**
   * Opens another camera, has `send` send its track instead of the current one, then puts it in `stream` and stops
   * the old one. When `send` fails the new track is stopped and the old one stays.
   */
  readonly switchCamera: (
    send: (track: MediaStreamTrack) => Effect.Effect<void, unknown>,
    constraints?: MediaTrackConstraints
  ) => Effect.Effect<void, MediaCaptureFailed>
}

const userMedia = (constraints: MediaStreamConstraints) =>
  Effect.tryPromise({
    try: () => navigator.mediaDevices.getUserMedia(constraints),
    catch: (e) => new MediaCaptureFailed({ reason: e instanceof Error ? e.name : "unknown" })
  })

/** Captures what `constraints` ask for, for the current scope. */
export const captureLocalMedia = (constraints: MediaStreamConstraints): Effect.Effect<LocalMedia, MediaCaptureFailed, Scope.Scope> =>
  Effect.gen(function*() {
    // Released with the tracks it holds then, a camera opened by a switch included.
    const stream = yield* Effect.acquireRelease(
      userMedia(constraints),
      (captured) => Effect.sync(() => captured.getTracks().forEach((track) => track.stop()))
    )
    const muted: Record<MediaKind, boolean> = { audio: false, video: false }

    const setMuted = (kind: MediaKind, mute: boolean) =>
      Effect.sync(() => {
        muted[kind] = mute
        for (const track of stream.getTracks()) if (track.kind === kind) track.enabled = !mute
      })

    const switchCamera: LocalMedia["switchCamera"] = (send, constraints = {}) =>
      Effect.gen(function*() {
        const next = yield* userMedia({ video: constraints })
        const track = next.getVideoTracks()[0]
        if (!track) return yield* new MediaCaptureFailed({ reason: "NotFoundError" })
        track.enabled = !muted.video
        yield* send(track).pipe(
          Effect.mapError(() => new MediaCaptureFailed({ reason: "InvalidStateError" })),
          Effect.tapError(() => Effect.sync(() => track.stop()))
        )
        const previous = stream.getVideoTracks()
        stream.addTrack(track)
        for (const old of previous) {
          stream.removeTrack(old)
          old.stop()
        }
      })

    return { stream, muted, setMuted, switchCamera } satisfies LocalMedia
  })
