/**
 * The demo's customer process: the customer's app, driven by the coordinator (main.ts) over IPC. It activates with
 * the code the practice handed over, keeps its key pair and config in its own key store file, and reaches the
 * server at the address its config names.
 */
import { Deferred, Effect, Either } from "effect"
import { stat } from "node:fs/promises"
import type { CallId } from "../domain/ids.js"
import type { IncomingCall, PresenceChanged } from "../domain/liveEvents.js"
import * as Sdk from "../sdk/node.js"
import {
  check,
  type DemoSignal,
  deviceRuntime,
  keysDestroyed,
  loadCredentials,
  negotiationMessages,
  receiveMessages,
  relayedPlaintext,
  secureDemoCall,
  takeEvent
} from "./device.js"
import { serveCommands } from "./ipc.js"

const device = deviceRuntime()
let storePath: string | undefined
let store: Sdk.KeyStore | undefined
let credentials: Sdk.DeviceCredentials | undefined
let session: Sdk.DeviceSession | undefined
let callId: CallId | undefined
let secure: Sdk.SecureCall<DemoSignal> | undefined

const need = <A>(value: A | undefined, what: string): Effect.Effect<A, Error> =>
  value === undefined ? Effect.fail(new Error(`no ${what} yet`)) : Effect.succeed(value)

const onCall = Effect.suspend(() => Effect.all([need(session, "session"), need(callId, "call")]))

/** The host this customer belongs to, as its config names it. */
const hostContact = (current: Sdk.DeviceCredentials) =>
  current.config.body.kind === "customer"
    ? Effect.succeed(current.config.body.hostContact)
    : Effect.fail(new Error("the config is not a customer's"))

export const commands = {
  /** Redeems the activation code: a fresh key pair and the signed config in the store. */
  activate: (args: { readonly url: string; readonly code: string; readonly storePath: string }) =>
    device.run(Effect.gen(function*() {
      storePath = args.storePath
      store = Sdk.fileKeyStore(args.storePath)
      const activated = yield* Sdk.activateCustomer(args.url, args.code, store, { extractableKey: true })
      const saved = yield* loadCredentials(store)
      yield* check(saved.config.signature === activated.config.signature, "the key store does not hold the new config")
      yield* check(saved.profileKey === undefined, "a customer's key store holds a profile key")
      const mode = (yield* Effect.promise(() => stat(args.storePath))).mode & 0o777
      return { kind: saved.config.body.kind, mode }
    })),

  /** Signs in with what the key store holds, at the server address its config names. */
  signIn: () =>
    device.run(Effect.gen(function*() {
      credentials = yield* loadCredentials(yield* need(store, "key store"))
      session = yield* Sdk.signIn(credentials, store!)
      return { kind: session.kind }
    })),

  goOnline: () => device.run(Effect.flatMap(need(session, "session"), (session) => session.setReady(true))),

  awaitHostOnline: () =>
    device.run(Effect.gen(function*() {
      const customer = yield* need(session, "session")
      const host = yield* hostContact(customer.credentials)
      yield* takeEvent(customer, (event): event is PresenceChanged =>
        event._tag === "PresenceChanged" && event.account === host && event.online)
    })),

  /** Waits for the ring; it must be the call the host placed, from the host the config names. */
  awaitRing: (expected: { readonly callId: string }) =>
    device.run(Effect.gen(function*() {
      const customer = yield* need(session, "session")
      const host = yield* hostContact(customer.credentials)
      const ring = yield* takeEvent(customer, (event): event is IncomingCall => event._tag === "IncomingCall")
      yield* check(ring.from === host, "the call comes from someone other than the customer's host")
      yield* check(ring.callId === expected.callId, "another call rings than the one the host placed")
      callId = ring.callId
    })),

  accept: () => device.run(Effect.flatMap(onCall, ([customer, call]) => customer.rpc.call.accept({ callId: call }))),

  /** Runs the call's handshake as the callee, right after accepting. */
  secureCall: () =>
    device.run(Effect.gen(function*() {
      const [customer, call] = yield* onCall
      secure = yield* secureDemoCall(customer, call, "callee", yield* hostContact(customer.credentials))
      return { safetyCode: secure.safetyCode }
    })),

  /** The host's offer and candidates, and whether what the server relayed showed any of it. */
  receiveOffer: (count: number) =>
    device.run(Effect.gen(function*() {
      const customer = yield* need(session, "session")
      const call = yield* need(secure, "secured call")
      const messages = yield* receiveMessages(call, count)
      return { messages, ...(yield* relayedPlaintext(customer, call.callId, messages)) }
    })),

  /** The SDP answer and ICE candidates, sealed; resolves with what was sent, for the other side to compare. */
  sendAnswer: () =>
    device.run(Effect.gen(function*() {
      const call = yield* need(secure, "secured call")
      const messages = negotiationMessages("answer")
      yield* Effect.forEach(messages, call.send)
      return messages
    })),

  /** Waits for the secured call to end; by then its keys are destroyed. */
  awaitCallEnded: () =>
    device.run(Effect.gen(function*() {
      const call = yield* need(secure, "secured call")
      const ended = yield* call.ended
      return { reason: ended.reason, keysDestroyed: yield* keysDestroyed(call) }
    })),

  /** Waits for the server to end this device's access: the close code, and whether AccessRevoked came first. */
  awaitRevocation: () =>
    device.run(Effect.gen(function*() {
      const customer = yield* need(session, "session")
      const closed = yield* Deferred.await(customer.closed)
      const events = yield* customer.received.get
      return { code: closed.code, revoked: closed.revoked, accessRevokedEvent: events.some((e) => e._tag === "AccessRevoked") }
    })),

  /** What the key store holds now, and whether its file is still there. */
  keyStore: () =>
    device.run(Effect.gen(function*() {
      const loaded = yield* Effect.promise(() => need(store, "key store").pipe(Effect.runPromise).then((s) => s.load()))
      const fileExists = yield* Effect.promise(() => stat(storePath!).then(() => true, () => false))
      return { empty: loaded === undefined, fileExists }
    })),

  /** Connects again with the config it had (kept in memory here), as a copy of the old app would. */
  reconnect: () =>
    device.run(Effect.gen(function*() {
      const old = yield* need(credentials, "credentials")
      const outcome = yield* Effect.either(Effect.scoped(Sdk.signIn(old, store!)))
      return Either.isLeft(outcome) ? { refused: outcome.left._tag } : { refused: undefined }
    }))
}

export type CustomerCommands = typeof commands

serveCommands(commands, device.close)
