/**
 * End-to-end security of a call's signalling on a signed-in device. Once the call is accepted, the two devices run
 * the call handshake (src/crypto/handshake.ts) over `call.signal`, each verifying the other against the identity
 * key it learnt at activation or enrollment. After that every application message (SDP offer and answer, ICE
 * candidates) is sealed with the call's keys before it leaves the device and opened on arrival: the server relays
 * ciphertext only and can neither read nor swap addresses or DTLS fingerprints.
 *
 * Fail closed: nothing but handshake frames leaves the device before the handshake completed; a relayed payload
 * that does not open is dropped with SignalRejected and never handed on; a failed handshake hangs the call up. The
 * keys belong to the scope: closing it hangs up and destroys them, and so does the end of the call.
 *
 * This module reads the call's SignalReceived and CallEnded events itself; an app using it should not `take`
 * those for the same call, and learns of the end through `ended` or `receive`.
 */
import { Array as Arr, Deferred, type Duration, Effect, type Either, Queue, Schema, type Scope } from "effect"
import type { ParseError } from "effect/ParseResult"
import { fromBase64Url, utf8Bytes } from "../crypto/bytes.js"
import * as CallCrypto from "../crypto/effect.js"
import { type HandshakeError, KeysDestroyed, MalformedMessage, type SignallingError, UnexpectedMessage } from "../crypto/errors.js"
import type { HandshakeParty } from "../crypto/handshake.js"
import { identityFingerprint } from "../crypto/identity.js"
import type { CallSession, Role } from "../crypto/session.js"
import type { SFrameCipherSuiteId, SFrameReceiver, SFrameReceiverOptions, SFrameSender } from "../crypto/sframe.js"
import type { AccountId, CallId } from "../domain/ids.js"
import { type CallEnded, MAX_SIGNAL_BYTES, type SignalReceived } from "../domain/liveEvents.js"
import { HandshakeTimedOut, SecureCallEnded, SignalRejected, SignalTooLarge, UnknownPeerKey } from "./callErrors.js"
import { type CallSignal, type CallSignalType, decodeCallSignal, encodeCallSignal, SEALED_OVERHEAD_BYTES } from "./callSignal.js"
import type { DeviceSession } from "./DeviceSession.js"

const DEFAULT_HANDSHAKE_TIMEOUT: Duration.DurationInput = "20 seconds"

export interface SecureCallOptions<A, I> {
  readonly callId: CallId
  /** `caller` on the device that invited, `callee` on the device that accepted. */
  readonly role: Role
  /**
   * The other party's identity keys as this device learnt them (DER SPKI, or base64url SPKI as in config files and
   * customer lists): see `peerIdentityKeys`. Never keys received during the call.
   */
  readonly peerIdentityKeys: ReadonlyArray<Uint8Array | string>
  /** The messages the app exchanges, sent as JSON; any JSON value when not given. Received ones are decoded with it. */
  readonly messages?: Schema.Schema<A, I>
  /** Also offer/accept the 2048-bit group 14; both sides must allow it. */
  readonly allowCompatibilityGroup14?: boolean
  /** How long the handshake may take once started; 20 seconds unless given. */
  readonly handshakeTimeout?: Duration.DurationInput
}

export interface SecureCall<A> {
  readonly callId: CallId
  readonly role: Role
  /** For both parties to read aloud and compare: the same on both sides unless someone substituted a key. */
  readonly safetyCode: string
  /** Seals and relays one message. Messages arrive in the order they were sent. */
  readonly send: (message: A) => Effect.Effect<void, SecureCallEnded | SignalTooLarge | ParseError>
  /**
   * The peer's next message. Fails with SignalRejected for a relayed payload that was dropped (the call goes on:
   * receive again), and with SecureCallEnded once the call is over.
   */
  readonly receive: Effect.Effect<A, SignalRejected | SecureCallEnded>
  /** Completes when the call has ended, saying why. The keys are destroyed by then. */
  readonly ended: Effect.Effect<SecureCallEnded>
  /** SFrame contexts for the media layer under this call's keys; they are destroyed together with the call. */
  readonly media: {
    readonly suite: SFrameCipherSuiteId
    readonly createSender: Effect.Effect<SFrameSender, KeysDestroyed>
    readonly createReceiver: (options?: Omit<SFrameReceiverOptions, "suite">) => Effect.Effect<SFrameReceiver, KeysDestroyed>
  }
  /** Hangs up and destroys the keys now; closing the scope does the same. */
  readonly hangUp: Effect.Effect<void>
}

/** Why a call could not be secured. Every case but SecureCallEnded has hung the call up. */
export type SecureCallError = HandshakeError | UnknownPeerKey | HandshakeTimedOut | SecureCallEnded

interface TrustedKey {
  readonly spki: Uint8Array
  readonly fingerprint: string
}

/** Keys that do not even decode are left out: they could never verify anything. */
const trustedKeys = (keys: ReadonlyArray<Uint8Array | string>): Effect.Effect<ReadonlyArray<TrustedKey>> =>
  Effect.map(
    Effect.forEach(keys, (key) =>
      Effect.option(Effect.tryPromise(async () => {
        const spki = typeof key === "string" ? fromBase64Url(key) : key
        return { spki, fingerprint: await identityFingerprint(spki) }
      }))),
    Arr.getSomes
  )

const rejection: Record<SignallingError["_tag"], SignalRejected["reason"]> = {
  MalformedMessage: "malformed",
  SignallingAuthenticationFailed: "authentication-failed",
  SignallingOutOfOrder: "out-of-order",
  KeysDestroyed: "unexpected"
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const keysDestroyedOrDie = <A>(run: () => Promise<A>): Effect.Effect<A, KeysDestroyed> =>
  Effect.tryPromise({ try: run, catch: (e) => e }).pipe(
    Effect.catchAll((e) => (e instanceof KeysDestroyed ? Effect.fail(e) : Effect.die(e)))
  )

/**
 * Secures an accepted call: runs the handshake as `role`, then returns the call's sealed message channel. Call it on
 * the caller's device after CallAccepted, on the callee's right after `call.accept`.
 */
export const secureCall = <A = unknown, I = A>(
  device: DeviceSession,
  options: SecureCallOptions<A, I>
): Effect.Effect<SecureCall<A>, SecureCallError, Scope.Scope> =>
  Effect.gen(function*() {
    const { callId, role } = options
    const codec = Schema.parseJson((options.messages ?? Schema.Unknown) as Schema.Schema<A, I>)
    const ended = yield* Deferred.make<SecureCallEnded>()
    const inbox = yield* Queue.unbounded<Either.Either<A, SignalRejected> | SecureCallEnded>()
    let handshake: { destroy(): void } | undefined
    let session: CallSession | undefined

    const finish = (end: SecureCallEnded, hangUp: boolean) =>
      Effect.gen(function*() {
        if (!(yield* Deferred.succeed(ended, end))) return
        handshake?.destroy()
        session?.destroy()
        yield* Queue.offer(inbox, end)
        if (hangUp) yield* Effect.ignore(device.rpc.call.hangUp({ callId }))
      })
    yield* Effect.addFinalizer(() => finish(new SecureCallEnded({ reason: "closed" }), true))

    /** The next payload the peer relayed for this call; the end of the call or of the connection as a failure. */
    const next = device.take((e): e is SignalReceived | CallEnded =>
      (e._tag === "SignalReceived" || e._tag === "CallEnded") && e.callId === callId
    ).pipe(
      Effect.mapError(() => new SecureCallEnded({ reason: "disconnected" })),
      Effect.flatMap((e) => e._tag === "CallEnded" ? Effect.fail(new SecureCallEnded({ reason: e.reason })) : Effect.succeed(e.payload))
    )
    const relay = (signal: CallSignal) =>
      device.rpc.call.signal({ callId, payload: encodeCallSignal(signal) }).pipe(
        Effect.mapError((e) => new SecureCallEnded({ reason: e._tag === "RpcClientError" ? "disconnected" : "not-found" }))
      )
    const receiveFrame = <T extends CallSignalType>(
      type: T
    ): Effect.Effect<Extract<CallSignal, { readonly type: T }>, SecureCallEnded | MalformedMessage | UnexpectedMessage> =>
      Effect.flatMap(next, (payload): Effect.Effect<Extract<CallSignal, { readonly type: T }>, MalformedMessage | UnexpectedMessage> => {
        const signal = decodeCallSignal(payload)
        if (!signal) return Effect.fail(new MalformedMessage({ reason: "not a call signalling frame" }))
        if (signal.type !== type) return Effect.fail(new UnexpectedMessage({ expected: type, received: signal.type }))
        return Effect.succeed(signal as Extract<CallSignal, { readonly type: T }>)
      })

    const trusted = yield* trustedKeys(options.peerIdentityKeys)
    const pick = (fingerprint: string) => {
      const key = trusted.find((k) => k.fingerprint === fingerprint)
      return key ? Effect.succeed(key) : Effect.fail(new UnknownPeerKey())
    }
    const self = device.credentials.keys
    const selfFingerprint = yield* Effect.promise(() => identityFingerprint(self.publicKeySpki))
    const peerKind = device.kind === "host" ? "customer" : "host"
    // Party ids both sides can name without asking the server: the kind of device and its key's fingerprint.
    const party = (peer: TrustedKey): HandshakeParty => ({
      callId,
      selfId: `${device.kind}:${selfFingerprint}`,
      selfIdentity: self,
      peerId: `${peerKind}:${peer.fingerprint}`,
      peerPublicKeySpki: peer.spki,
      ...(options.allowCompatibilityGroup14 ? { allowCompatibilityGroup14: true } : {})
    })

    // The crypto steps run uninterrupted so that keys they make are always held here, to be destroyed.
    const asCaller = Effect.gen(function*() {
      const hello = yield* receiveFrame("hello")
      const peer = yield* pick(hello.fingerprint)
      const started = yield* Effect.uninterruptible(Effect.tap(
        CallCrypto.startCallerHandshake(party(peer)),
        ({ state }) => (handshake = state)
      ))
      yield* relay({ type: "offer", fingerprint: selfFingerprint, message: started.offer })
      const answer = yield* receiveFrame("answer")
      const { confirm } = yield* Effect.uninterruptible(Effect.tap(
        CallCrypto.receiveAnswer(started.state, answer.message),
        (result) => (session = result.session)
      ))
      yield* relay({ type: "confirm", message: confirm })
    })
    const asCallee = Effect.gen(function*() {
      yield* relay({ type: "hello", fingerprint: selfFingerprint })
      const offer = yield* receiveFrame("offer")
      const peer = yield* pick(offer.fingerprint)
      const responded = yield* Effect.uninterruptible(Effect.tap(
        CallCrypto.respondToOffer({ ...party(peer), offer: offer.message }),
        ({ state }) => (handshake = state)
      ))
      yield* relay({ type: "answer", message: responded.answer })
      const confirm = yield* receiveFrame("confirm")
      yield* Effect.uninterruptible(Effect.tap(
        CallCrypto.receiveConfirm(responded.state, confirm.message),
        (result) => (session = result)
      ))
    })

    yield* (trusted.length === 0 ? Effect.fail(new UnknownPeerKey()) : role === "caller" ? asCaller : asCallee).pipe(
      Effect.timeoutFail({ duration: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT, onTimeout: () => new HandshakeTimedOut() }),
      Effect.tapError((error) =>
        error._tag === "SecureCallEnded" ? finish(error, false) : finish(new SecureCallEnded({ reason: "closed" }), true)
      )
    )
    const established = session!

    const open = (payload: Uint8Array): Effect.Effect<A, SignalRejected> => {
      const signal = decodeCallSignal(payload)
      if (signal?.type !== "sealed") return Effect.fail(new SignalRejected({ reason: signal ? "unexpected" : "malformed" }))
      return CallCrypto.openSignalling(established, signal.record).pipe(
        Effect.mapError((e) => new SignalRejected({ reason: rejection[e._tag] })),
        Effect.flatMap((plaintext) =>
          Effect.try({ try: () => utf8.decode(plaintext), catch: () => new SignalRejected({ reason: "invalid-message" }) })
        ),
        Effect.flatMap((text) => Schema.decode(codec)(text)),
        Effect.catchTag("ParseError", () => Effect.fail(new SignalRejected({ reason: "invalid-message" })))
      )
    }
    yield* next.pipe(
      Effect.flatMap((payload) => Effect.either(open(payload))),
      Effect.flatMap((item) => Effect.unlessEffect(Queue.offer(inbox, item), Deferred.isDone(ended))),
      Effect.forever,
      Effect.catchAll((end) => finish(end, false)),
      Effect.forkScoped
    )

    const receive = Effect.flatMap(Queue.take(inbox), (item): Effect.Effect<A, SignalRejected | SecureCallEnded> =>
      // The end stays in the inbox, so that every later receive fails with it too.
      item instanceof SecureCallEnded ? Effect.zipRight(Queue.offer(inbox, item), Effect.fail(item)) : item
    )

    const sending = yield* Effect.makeSemaphore(1)
    const send = (message: A) =>
      sending.withPermits(1)(Effect.gen(function*() {
        const plaintext = utf8Bytes(yield* Schema.encode(codec)(message))
        const bytes = plaintext.length + SEALED_OVERHEAD_BYTES
        if (bytes > MAX_SIGNAL_BYTES) return yield* new SignalTooLarge({ bytes, maxBytes: MAX_SIGNAL_BYTES })
        const hasEnded = Effect.flip(Deferred.await(ended))
        if (yield* Deferred.isDone(ended)) return yield* hasEnded
        // A record sealed must be relayed, or every later one would arrive out of order.
        yield* Effect.uninterruptible(
          CallCrypto.sealSignalling(established, plaintext).pipe(
            Effect.catchTag("KeysDestroyed", () => hasEnded),
            Effect.flatMap((record) => relay({ type: "sealed", record }))
          )
        )
      }))

    return {
      callId,
      role,
      safetyCode: established.safetyCode,
      send,
      receive,
      ended: Deferred.await(ended),
      media: {
        suite: established.sframeSuite,
        createSender: keysDestroyedOrDie(() => established.createSFrameSender()),
        createReceiver: (receiverOptions) => keysDestroyedOrDie(() => established.createSFrameReceiver(receiverOptions))
      },
      hangUp: finish(new SecureCallEnded({ reason: "closed" }), true)
    } satisfies SecureCall<A>
  })

type RpcError<F extends (...args: ReadonlyArray<never>) => Effect.Effect<unknown, unknown>> = Effect.Effect.Error<ReturnType<F>>
/** The connection failed, or the device may not ask (its access was just revoked). */
export type PeerKeysError = RpcError<DeviceSession["rpc"]["host"]["listCustomers"]> | RpcError<DeviceSession["rpc"]["customer"]["host"]>

/**
 * The identity keys a device trusts for the other party of a call with `peer` (IncomingCall.from, or the invited
 * account), as base64url SPKI. A customer trusts the host device keys of its config file, from activation; with
 * `current`, also the host's present devices from `customer.host` (host devices enrolled since). A host trusts the
 * customer's device key from `host.listCustomers`. All of them reach the device through the server: comparing the
 * safety code is what shows that no one in between substituted one. No key (not the customer's host, a customer
 * not active) is an empty list, which secureCall refuses with UnknownPeerKey.
 */
export const peerIdentityKeys = (device: DeviceSession, peer: AccountId, options: { readonly current?: boolean } = {}) =>
  Effect.gen(function*(): Effect.fn.Return<ReadonlyArray<string>, PeerKeysError> {
    const body = device.credentials.config.body
    if (body.kind === "customer") {
      if (peer !== body.hostContact) return []
      if (!options.current) return body.hostIdentityKeys
      const { identityKeys } = yield* device.rpc.customer.host()
      return [...new Set([...body.hostIdentityKeys, ...identityKeys])]
    }
    const customers = yield* device.rpc.host.listCustomers()
    const key = customers.find((c) => c.customerId === peer)?.devicePublicKey
    return key === undefined ? [] : [key]
  })
