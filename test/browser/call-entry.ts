/**
 * Loaded into each party's Chromium page for the call tests: the call handshake of src/crypto with messages carried
 * by the test (hex through page.evaluate), then the SDK's call media with its signalling sealed under the call's
 * keys and relayed by the test through the `tesseraRelay` binding, so the relay sees only ciphertext, as the server
 * does. Exposed to page.evaluate as `tesseraCall`.
 */
import { Effect, Exit, Queue, Scope } from "effect"
import { fromHex, toHex } from "../../src/crypto/bytes.js"
import { type CalleeHandshake, type CallerHandshake, respondToOffer, startCallerHandshake } from "../../src/crypto/handshake.js"
import { type IdentityKeyPair, importIdentityKeyPair } from "../../src/crypto/identity.js"
import type { CallSession, Role } from "../../src/crypto/session.js"
import { SFrameReceiver } from "../../src/crypto/sframe.js"
import * as Media from "../../src/sdk/media/index.js"

declare global {
  /** Installed by the test with page.exposeFunction: hands a sealed record (hex) to the other page. */
  function tesseraRelay(record: string): Promise<void>
}

export interface Party {
  readonly callId: string
  readonly selfId: string
  readonly peerId: string
  readonly peerSpki: string
}

export interface StartCall {
  readonly role: Role
  /** The receiver gets a key of another call: every frame it receives must be dropped. */
  readonly wrongReceiveKey?: boolean
}

let identity: IdentityKeyPair | undefined
let handshake: CallerHandshake | CalleeHandshake | undefined
let session: CallSession | undefined
let scope: Scope.CloseableScope | undefined
let media: Media.CallMedia | undefined
const inbox = Effect.runSync(Queue.unbounded<string>())
/** What the page did with the browser's media APIs: a refused call must not have touched them. */
const touched = { peerConnections: 0, captures: 0 }

const party = (p: Party) => ({
  callId: p.callId,
  selfId: p.selfId,
  peerId: p.peerId,
  selfIdentity: identity!,
  peerPublicKeySpki: fromHex(p.peerSpki)
})

const text = new TextEncoder()
const untext = new TextDecoder()

/** The media messages, sealed with the call's signalling keys: the test in between relays ciphertext only. */
const sealedChannel = (call: CallSession): Media.MediaSignalChannel<never, never> => ({
  send: (message) =>
    Effect.promise(async () => {
      const record = await call.seal(text.encode(JSON.stringify(message)))
      await tesseraRelay(toHex(record))
    }),
  receive: Effect.flatMap(Queue.take(inbox), (hex) => Effect.promise(async () => JSON.parse(untext.decode(await call.open(fromHex(hex))))))
})

const wrongKeys = (keys: Media.MediaKeys, call: CallSession): Media.MediaKeys => ({
  ...keys,
  createReceiver: (options) =>
    Effect.promise(async () => {
      const receiver = new SFrameReceiver({ ...options, suite: keys.suite })
      await receiver.addKey(call.sframeReceiveKid, crypto.getRandomValues(new Uint8Array(32)))
      return receiver
    })
})

const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)

const api = {
  touched,

  async importIdentity(pkcs8: string, spki: string) {
    identity = await importIdentityKeyPair(fromHex(pkcs8), fromHex(spki))
  },

  async startHandshake(p: Party): Promise<string> {
    const { offer, state } = await startCallerHandshake(party(p))
    handshake = state
    return toHex(offer)
  },

  async respond(p: Party, offer: string): Promise<string> {
    const { answer, state } = await respondToOffer({ ...party(p), offer: fromHex(offer) })
    handshake = state
    return toHex(answer)
  },

  async receiveAnswer(answer: string): Promise<string> {
    const result = await (handshake as CallerHandshake).receiveAnswer(fromHex(answer))
    session = result.session
    return toHex(result.confirm)
  },

  async receiveConfirm(confirm: string): Promise<void> {
    session = await (handshake as CalleeHandshake).receiveConfirm(fromHex(confirm))
  },

  safetyCode: () => session!.safetyCode,

  /** Starts the call's media; a typed failure comes back as its tag. */
  async startCall(options: StartCall): Promise<{ readonly startedAt: number } | { readonly error: string }> {
    const call = session!
    const keys = Media.mediaKeysOf(call)
    scope = Effect.runSync(Scope.make())
    const startedAt = Date.now()
    const exit = await Effect.runPromiseExit(
      Scope.extend(
        Media.startCallMedia({
          role: options.role,
          keys: options.wrongReceiveKey ? wrongKeys(keys, call) : keys,
          signalling: sealedChannel(call)
        }),
        scope
      )
    )
    if (Exit.isSuccess(exit)) {
      media = exit.value
      return { startedAt }
    }
    const failure = exit.cause._tag === "Fail" ? (exit.cause.error as { readonly _tag?: string }) : undefined
    return { error: failure?._tag ?? "defect" }
  },

  deliver(record: string) {
    Queue.unsafeOffer(inbox, record)
  },

  stats: () => run(media!.stats),

  /** "connected", or why not: the reason, and with "peer-failed" the peer's ("peer-failed/frame-protection"). */
  awaitConnected: () =>
    run(Effect.either(media!.awaitConnected).pipe(
      Effect.map((e) => e._tag === "Right" ? "connected" : e.left.peerReason ? `${e.left.reason}/${e.left.peerReason}` : e.left.reason)
    )),

  /** When (Date.now) getStats first counted a decoded video frame, polling every 50 ms. */
  async firstDecodedFrame(timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const stats = await run(media!.stats)
      if (stats.video.framesDecoded > 0) return Date.now()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return undefined
  },

  setMuted: (kind: Media.MediaKind, muted: boolean) => run(media!.setMuted(kind, muted)),
  switchCamera: () => run(Effect.either(media!.switchCamera()).pipe(Effect.map((e) => (e._tag === "Right" ? "switched" : e.left.reason)))),
  restartIce: () => run(media!.restartIce),
  localVideoTrackId: () => media!.localStream.getVideoTracks()[0]?.id,

  /** The brightest pixel of the peer's video as this page shows it (0 for black frames). */
  async remoteBrightness(): Promise<number> {
    let video = document.querySelector("video")
    if (!video) {
      video = document.createElement("video")
      video.muted = true
      video.autoplay = true
      video.playsInline = true
      video.srcObject = media!.remoteStream
      document.body.append(video)
      await video.play()
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    const canvas = document.createElement("canvas")
    canvas.width = 160
    canvas.height = 120
    const context = canvas.getContext("2d", { willReadFrequently: true })!
    context.drawImage(video, 0, 0, canvas.width, canvas.height)
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data
    let brightest = 0
    for (let i = 0; i < pixels.length; i += 4) brightest = Math.max(brightest, pixels[i]!, pixels[i + 1]!, pixels[i + 2]!)
    return brightest
  },

  /** Hang-up of the keys only: the SFrame contexts are destroyed while the connection stays up. */
  destroyKeys: () => session!.destroy(),

  async hangUp() {
    if (scope) await Effect.runPromise(Scope.close(scope, Exit.void))
    scope = undefined
    media = undefined
  },

  /** Makes this page a browser without encoded transforms, and counts what a call then touches. */
  removeEncodedTransforms() {
    const g = globalThis as Record<string, any>
    delete g["RTCRtpSender"].prototype.createEncodedStreams
    delete g["RTCRtpReceiver"].prototype.createEncodedStreams
    delete g["RTCRtpScriptTransform"]
    const PeerConnection = g["RTCPeerConnection"]
    g["RTCPeerConnection"] = class extends PeerConnection {
      constructor(...args: Array<unknown>) {
        super(...args)
        touched.peerConnections++
      }
    }
    const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices)
    navigator.mediaDevices.getUserMedia = (constraints) => {
      touched.captures++
      return getUserMedia(constraints)
    }
  }
}

export type CallPageApi = typeof api

Object.assign(globalThis, { tesseraCall: api })
