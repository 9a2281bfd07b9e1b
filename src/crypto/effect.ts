/**
 * The call crypto as Effects, for the SDK: the same operations as handshake.ts and session.ts, with their expected
 * failures in the error channel (HandshakeError, SignallingError, SFrameError) and anything else as a defect.
 */
import * as Effect from "effect/Effect"
import {
  isHandshakeError,
  isSFrameError,
  isSignallingError,
  KeysDestroyed,
  type HandshakeError,
  type SFrameError,
  type SignallingError
} from "./errors.js"
import {
  respondToOffer as respondToOfferPromise,
  startCallerHandshake as startCallerHandshakePromise,
  type CalleeHandshake,
  type CallerHandshake,
  type HandshakeParty
} from "./handshake.js"
import type { CallSession } from "./session.js"
import type { SFrameReceiver, SFrameSender } from "./sframe.js"

const lift = <A, E>(run: () => Promise<A>, expected: (u: unknown) => u is E): Effect.Effect<A, E> =>
  Effect.tryPromise({ try: run, catch: (e) => e }).pipe(
    Effect.catchAll((e) => (expected(e) ? Effect.fail(e) : Effect.die(e)))
  )

const isKeysDestroyed = (u: unknown): u is KeysDestroyed => u instanceof KeysDestroyed

export const startCallerHandshake = (
  party: HandshakeParty
): Effect.Effect<{ readonly offer: Uint8Array; readonly state: CallerHandshake }, HandshakeError> =>
  lift(() => startCallerHandshakePromise(party), isHandshakeError)

export const respondToOffer = (
  party: HandshakeParty & { readonly offer: Uint8Array }
): Effect.Effect<{ readonly answer: Uint8Array; readonly state: CalleeHandshake }, HandshakeError> =>
  lift(() => respondToOfferPromise(party), isHandshakeError)

export const receiveAnswer = (
  state: CallerHandshake,
  answer: Uint8Array
): Effect.Effect<{ readonly confirm: Uint8Array; readonly session: CallSession }, HandshakeError> =>
  lift(() => state.receiveAnswer(answer), isHandshakeError)

export const receiveConfirm = (state: CalleeHandshake, confirm: Uint8Array): Effect.Effect<CallSession, HandshakeError> =>
  lift(() => state.receiveConfirm(confirm), isHandshakeError)

export const sealSignalling = (session: CallSession, payload: Uint8Array): Effect.Effect<Uint8Array, KeysDestroyed> =>
  lift(() => session.seal(payload), isKeysDestroyed)

export const openSignalling = (session: CallSession, record: Uint8Array): Effect.Effect<Uint8Array, SignallingError> =>
  lift(() => session.open(record), isSignallingError)

export const encryptFrame = (sender: SFrameSender, frame: Uint8Array, metadata?: Uint8Array): Effect.Effect<Uint8Array, SFrameError> =>
  lift(() => sender.encrypt(frame, metadata), isSFrameError)

export const decryptFrame = (
  receiver: SFrameReceiver,
  frame: Uint8Array,
  metadata?: Uint8Array
): Effect.Effect<Uint8Array, SFrameError> => lift(() => receiver.decrypt(frame, metadata), isSFrameError)

/** The call's session as a scoped resource: destroyed (keys zeroed) when the scope closes, i.e. at hang-up. */
export const scopedSession = <E, R>(acquire: Effect.Effect<CallSession, E, R>) =>
  Effect.acquireRelease(acquire, (session) => Effect.sync(() => session.destroy()))
