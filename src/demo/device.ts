/**
 * What both demo client processes share: one long-lived scope for the device's connection (so that a signed-in
 * session outlives the command that opened it), the Node WebSocket, and small helpers over the SDK's live events.
 */
import type { Socket } from "@effect/platform"
import { Effect, Exit, Scope } from "effect"
import { createHash, randomBytes } from "node:crypto"
import type { LiveEvent, SignalReceived } from "../domain/liveEvents.js"
import type { CallId } from "../domain/ids.js"
import * as Sdk from "../sdk/node.js"
import { runToPromise } from "./ipc.js"

export interface DeviceRuntime {
  /** Runs an SDK effect; what it opens in its scope stays open until `close`. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Scope.Scope | Socket.WebSocketConstructor>) => Promise<A>
  /** Closes every connection the device opened. */
  readonly close: () => Promise<void>
}

export const deviceRuntime = (): DeviceRuntime => {
  const scope = Effect.runSync(Scope.make())
  return {
    run: (effect) => runToPromise(effect.pipe(Scope.extend(scope), Effect.provide(Sdk.NodeWebSocket))),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export class ConnectionEnded extends Error {}

/** The next live event that matches; fails with a readable error when the connection closes first. */
export const takeEvent = <A extends LiveEvent>(session: Sdk.DeviceSession, match: (event: LiveEvent) => event is A) =>
  session.take(match).pipe(
    Effect.catchAll((closed) => Effect.fail(new ConnectionEnded(`the connection closed (code ${closed.code}) first`)))
  )

/** Fails with `message` unless `condition` holds. */
export const check = (condition: boolean, message: string): Effect.Effect<void, Error> =>
  condition ? Effect.void : Effect.fail(new Error(message))

export const digest = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/**
 * Opaque signalling payloads of the given sizes, sent in order on the call; resolves with their digests so that the
 * coordinator can compare them with what arrived on the other side.
 */
export const sendSignals = (session: Sdk.DeviceSession, callId: CallId, sizes: ReadonlyArray<number>) =>
  Effect.forEach(sizes, (size) => {
    const payload = new Uint8Array(randomBytes(size))
    return Effect.as(session.rpc.call.signal({ callId, payload }), digest(payload))
  })

/** The digests of the next `count` signalling payloads received on the call, in order of arrival. */
export const receiveSignals = (session: Sdk.DeviceSession, callId: CallId, count: number) =>
  Effect.forEach(Array.from({ length: count }), () =>
    Effect.map(
      takeEvent(session, (event): event is SignalReceived => event._tag === "SignalReceived" && event.callId === callId),
      (event) => digest(event.payload)
    ))

/** Loads a device's credentials from its key store, as the app does when it starts. */
export const loadCredentials = (store: Sdk.KeyStore) =>
  Effect.flatMap(Effect.promise(() => store.load()), (credentials) =>
    credentials === undefined ? Effect.fail(new Error("the key store is empty")) : Effect.succeed(credentials))
